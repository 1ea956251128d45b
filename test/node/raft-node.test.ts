// RaftNode embedded in one Node program, as the README shows: three nodes over real FileStorage
// (fsync on) and real TcpTransport sockets on 127.0.0.1, each with its own tiny state machine.
// Proves the runtime end to end without the HTTP service: election, proposals applied in order
// on every node, ReadIndex, automatic snapshots and compaction, a follower that was away catching
// up by InstallSnapshot, and "snapshot + replay equals the state of a node that never restarted".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftNode, StoppedError, type NodeLogger, type PeerSender } from '../../src/node/index.js';
import { ProposalDroppedError, type Entry, type NodeId, type StateMachine } from '../../src/raft/index.js';
import { FileStorage } from '../../src/storage/index.js';
import { TcpTransport } from '../../src/transport/index.js';
import { freePorts } from '../../src/transport/free-ports.js';

/** Appends every normal entry's text to a list; apply returns the list's new length. */
class ListMachine implements StateMachine<number> {
  items: string[] = [];
  /** Applied entries with data that was not a Buffer, and the largest buffer any data was a view into. */
  notBuffers = 0;
  largestBacking = 0;
  apply(entry: Entry): number {
    if (entry.data.length > 0 && !Buffer.isBuffer(entry.data)) this.notBuffers++;
    this.largestBacking = Math.max(this.largestBacking, entry.data.buffer.byteLength);
    if (entry.type === 'normal' && entry.data.length > 0) this.items.push(new TextDecoder().decode(entry.data));
    return this.items.length;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(new TextDecoder().decode(data)) as string[];
  }
}

interface Member {
  readonly id: NodeId;
  readonly dir: string;
  node: RaftNode<number> | null;
  transport: TcpTransport | null;
  sm: ListMachine;
  port: number;
}

const IDS = ['a', 'b', 'c'];

/** Ports fixed up front (outside the ephemeral range) so a member that restarts listens where its peers dial. */
async function makeMembers(root: string): Promise<Member[]> {
  const ports = await freePorts(IDS.length);
  return IDS.map((id, i) => ({ id, dir: join(root, id), node: null, transport: null, sm: new ListMachine(), port: ports[i]! }));
}

interface MemberOptions {
  readonly snapshotEntries: number;
  readonly catchUp: number;
  readonly logger?: (id: NodeId) => NodeLogger;
}

async function startMember(m: Member, members: readonly Member[], opts: MemberOptions): Promise<void> {
  const storage = await FileStorage.open(m.dir);
  m.sm = new ListMachine();
  const transport = new TcpTransport({
    id: m.id,
    listenHost: '127.0.0.1',
    listenPort: m.port,
    onMessage: (msg) => m.node?.receive(msg),
    onUnreachable: (peer) => m.node?.reportUnreachable(peer),
    onSnapshotStatus: (peer, ok) => m.node?.reportSnapshot(peer, ok),
  });
  await transport.start();
  m.transport = transport;
  for (const other of members) if (other !== m) transport.addPeer(other.id, { host: '127.0.0.1', port: other.port });
  for (const other of members) if (other !== m && other.transport !== null) other.transport.addPeer(m.id, { host: '127.0.0.1', port: m.port });
  m.node = await RaftNode.start<number>({
    id: m.id,
    // As an embedder would: peer messages reach the core while a restart loads its snapshot.
    onCoreStarted: (n) => (m.node = n),
    storage,
    stateMachine: m.sm,
    transport,
    initialCluster: { voters: IDS, votersOutgoing: [], learners: [] },
    heartbeatMs: 20,
    electionMs: 200,
    snapshotEntries: opts.snapshotEntries,
    snapshotCatchUpEntries: opts.catchUp,
    ...(opts.logger !== undefined ? { logger: opts.logger(m.id) } : {}),
  });
}

async function stopMember(m: Member): Promise<void> {
  await m.node?.stop();
  await m.transport?.stop();
  m.node = null;
  m.transport = null;
}

/** Three members in a fresh directory, started; `run` gets them; all stopped and removed after. */
async function withMembers(opts: MemberOptions, run: (members: Member[]) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'raftkv-node-'));
  const members = await makeMembers(root);
  try {
    for (const m of members) await startMember(m, members, opts);
    await run(members);
  } finally {
    for (const m of members) await stopMember(m);
    rmSync(root, { recursive: true, force: true });
  }
}

async function waitFor<T>(what: string, probe: () => T | null | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function leaderOf(members: readonly Member[]): Member | undefined {
  return members.find((m) => m.node?.isLeader === true);
}

async function proposeMany(members: readonly Member[], from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; ) {
    const leader = await waitFor('a leader', () => leaderOf(members));
    // Proposals go in batches of 20 so the log grows quickly without an unbounded queue.
    const batch = Array.from({ length: Math.min(20, from + count - i) }, (_, k) => `v${i + k}`);
    try {
      await Promise.all(batch.map((v) => leader.node!.propose(new TextEncoder().encode(v))));
      i += batch.length;
    } catch {
      // Leadership moved mid-batch: the same values are proposed again below, so the list may
      // hold a value twice; the test compares nodes with each other, never with a fixed list.
      await new Promise((r) => setTimeout(r, 50));
      return proposeMany(members, i, from + count - i);
    }
  }
}

test('three embedded RaftNodes elect one leader and apply every proposal in the same order', async () => {
  await withMembers({ snapshotEntries: 10_000, catchUp: 100 }, async (members) => {
    const leader = await waitFor('a leader', () => leaderOf(members));
    assert.equal(members.filter((m) => m.node!.isLeader).length, 1);

    const applied = await leader.node!.propose(new TextEncoder().encode('first'));
    assert.equal(applied.result, 1, 'apply()’s return value comes back to the proposer');
    await proposeMany(members, 0, 99);
    const target = leader.node!.appliedIndex;
    for (const m of members) await waitFor(`${m.id} to apply ${target}`, () => m.node!.appliedIndex >= target);
    for (const m of members) assert.deepEqual(m.sm.items, leader.sm.items, `${m.id} applied the same entries in the same order`);
    assert.ok(leader.sm.items.length >= 100);
    // The log keeps its entries in Buffer slabs of its own (RaftOptions.allocateEntryBytes): the
    // state machine gets Buffers (kv's native string copy), never views into a larger frame.
    for (const m of members) {
      assert.equal(m.sm.notBuffers, 0, `${m.id} applied entries that are not Buffers`);
      assert.ok(m.sm.largestBacking <= 1024 * 1024, `${m.id} applied a view into ${m.sm.largestBacking} bytes`);
    }

    // ReadIndex (thesis §6.4) on the leader returns an index at least as new as every write it acknowledged.
    const readIndex = await leader.node!.readIndex();
    assert.ok(readIndex >= applied.index);

    // A follower refuses proposals; the caller learns who leads.
    const follower = members.find((m) => m !== leader)!;
    assert.throws(() => follower.node!.propose(new Uint8Array([1])), /leader/i);
  });
});

test('a follower matches the entry the leader appended for it, whether the leader\'s answer comes before or after the follower applies it', async () => {
  await withMembers({ snapshotEntries: 10_000, catchUp: 100 }, async (members) => {
    const leader = await waitFor('a leader', () => leaderOf(members));
    const follower = members.find((m) => m !== leader)!;
    const f = follower.node!;
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);

    // The answer first: the follower waits, and gets its own apply's result.
    f.forwarding(1);
    const first = leader.node!.proposeForwarded(text('answer-first'), follower.id);
    const settled = f.awaitForwarded(first.index, first.term);
    f.forwardAnswered(1);
    const applied = await settled;
    assert.equal(applied.index, first.index);
    assert.equal(follower.sm.items[applied.result - 1], 'answer-first', 'the result is the follower\'s own apply of that entry');

    // The entry first: applied before the answer arrives, its result was kept.
    f.forwarding(1);
    const second = leader.node!.proposeForwarded(text('entry-first'), follower.id);
    await waitFor(`${follower.id} to apply ${second.index}`, () => f.appliedIndex >= second.index);
    const late = await f.awaitForwarded(second.index, second.term);
    f.forwardAnswered(1);
    assert.equal(follower.sm.items[late.result - 1], 'entry-first');

    // Another term at that index: the proposal did not apply (a definite answer: 503, not 504).
    f.forwarding(1);
    const third = leader.node!.proposeForwarded(text('overwritten'), follower.id);
    await waitFor(`${follower.id} to apply ${third.index}`, () => f.appliedIndex >= third.index);
    await assert.rejects(f.awaitForwarded(third.index, third.term + 1), (err: unknown) => err instanceof ProposalDroppedError && err.outcome === 'not-applied');
    f.forwardAnswered(1);

    // Nothing was announced, so nothing was kept: the outcome is unknown, never guessed.
    const fourth = leader.node!.proposeForwarded(text('unannounced'), follower.id);
    await waitFor(`${follower.id} to apply ${fourth.index}`, () => f.appliedIndex >= fourth.index);
    await assert.rejects(f.awaitForwarded(fourth.index, fourth.term), (err: unknown) => err instanceof ProposalDroppedError && err.outcome === 'unknown');
  });
});

test('§7 a follower that was away past compaction catches up by InstallSnapshot; snapshot + replay equals a node that never restarted', async () => {
  const opts = { snapshotEntries: 50, catchUp: 10 };
  await withMembers(opts, async (members) => {
    await proposeMany(members, 0, 60);

    const leader = await waitFor('a leader', () => leaderOf(members));
    const away = members.find((m) => m !== leader)!;
    await stopMember(away);
    // While it is away the others take snapshots and drop the log it would need.
    await proposeMany(members, 60, 300);
    const live = members.filter((m) => m !== away);
    await waitFor('a snapshot on the live nodes', () => live.every((m) => m.node!.stats.snapshotsTaken >= 2));

    await startMember(away, members, opts);
    const target = leaderOf(members)?.node?.appliedIndex ?? 0;
    await waitFor(`${away.id} to catch up`, () => away.node!.appliedIndex >= target, 15_000);
    assert.ok(away.node!.stats.snapshotsInstalled >= 1, 'the returning follower installed a snapshot rather than replaying a log that no longer exists');

    // Restart a node that kept running: it rebuilds from its newest snapshot plus the log after it.
    const steady = live.find((m) => !m.node!.isLeader)!;
    const before = [...steady.sm.items];
    await stopMember(steady);
    await startMember(steady, members, opts);
    await waitFor(`${steady.id} to re-apply`, () => steady.sm.items.length >= before.length);
    assert.deepEqual(steady.sm.items.slice(0, before.length), before, 'snapshot + replay rebuilt exactly the state it had');
    assert.equal(steady.node!.stats.restoredBeside, 1, 'its snapshot was loaded beside the running core (onCoreStarted)');

    await proposeMany(members, 360, 10);
    const last = await waitFor('a leader', () => leaderOf(members));
    const final = last.node!.appliedIndex;
    for (const m of members) await waitFor(`${m.id} to apply ${final}`, () => m.node!.appliedIndex >= final);
    for (const m of members) assert.deepEqual(m.sm.items, last.sm.items, `${m.id} holds the same state as the leader`);
  });
});

test('thesis §6.4.1 a leader whose event loop was held past its lease serves no lease read when it resumes: its ticks follow the clock, not its timer', async () => {
  await withMembers({ snapshotEntries: 10_000, catchUp: 100 }, async (members) => {
    const leader = await waitFor('a leader', () => leaderOf(members));
    await leader.node!.propose(new TextEncoder().encode('x'));
    await waitFor('the leader lease', () => leader.node!.leaseReadIndex() !== null);
    // The process is held (a long GC pause, SIGSTOP, a swapped-out page) for longer than an
    // election timeout (200 ms): the followers' own clocks may have elected another leader
    // meanwhile, and what this leader holds may be stale. No tick timer has fired yet.
    const heldUntil = performance.now() + 500;
    while (performance.now() < heldUntil) {
      // held
    }
    assert.equal(leader.node!.leaseReadIndex(), null, 'the lease lapsed while the loop was held');
    // Once a leader (this one, or one the others elected on resuming) hears from a quorum again,
    // lease reads are served again.
    await waitFor('a lease again', () => leaderOf(members)?.node!.leaseReadIndex() != null);
  });
});

test('a node whose event loop was held past half an election timeout says so in its log, once, with how long', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-held-'));
  const lines: { msg: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  const record = (msg: string, fields?: Readonly<Record<string, unknown>>): void => void lines.push({ msg, fields });
  const node = await RaftNode.start<number>({
    id: 'a',
    storage: await FileStorage.open(dir),
    stateMachine: new ListMachine(),
    transport: { send(): void {} },
    initialCluster: { voters: ['a'], votersOutgoing: [], learners: [] },
    heartbeatMs: 50,
    electionMs: 1000,
    logger: { info: record, warn: record, error: record },
  });
  try {
    await waitFor('a leader', () => node.isLeader);
    // Ticks every 25 ms on an idle loop: nothing to warn about.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(lines.filter((l) => l.msg === 'event loop held'), [], 'an idle loop is not held');
    const heldUntil = performance.now() + 700;
    while (performance.now() < heldUntil) {
      // held: more than half the 1 s election timeout
    }
    await waitFor('the warning', () => lines.some((l) => l.msg === 'event loop held'));
    await new Promise((r) => setTimeout(r, 100));
    const held = lines.filter((l) => l.msg === 'event loop held');
    assert.equal(held.length, 1, 'one hold, one line');
    assert.ok((held[0]!.fields!['ms'] as number) >= 700, `held ${String(held[0]!.fields!['ms'])} ms`);
    assert.deepEqual({ role: held[0]!.fields!['role'], electionMs: held[0]!.fields!['electionMs'] }, { role: 'leader', electionMs: 1000 });
    // The loop was held by this process spinning, not by a missing core: it spent CPU on it
    // (a share of the 700 ms however busy the machine is; a starved process would show little).
    const cpuMs = held[0]!.fields!['cpuMs'];
    assert.ok(typeof cpuMs === 'number' && cpuMs >= 100, `cpuMs ${String(cpuMs)}`);
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restarted member says in its log when it has replayed its log to the commit index it started with (the bench reads it as a phase)', async () => {
  const logged = new Map<NodeId, { msg: string; fields: Readonly<Record<string, unknown>> | undefined }[]>(IDS.map((id) => [id, []]));
  const logger = (id: NodeId): NodeLogger => {
    const record = (msg: string, fields?: Readonly<Record<string, unknown>>): void => void logged.get(id)!.push({ msg, fields });
    return { info: record, warn: record, error: record };
  };
  const opts: MemberOptions = { snapshotEntries: 1_000_000, catchUp: 100, logger };
  await withMembers(opts, async (members) => {
    // 8 KiB entries: the restart's replay of 200 (1.6 MB) takes several parts (512 KiB each).
    for (let i = 0; i < 200; i += 40) {
      const leader = await waitFor('a leader', () => leaderOf(members));
      await Promise.all(Array.from({ length: 40 }, (_, k) => leader.node!.propose(new TextEncoder().encode(`v${i + k}:`.padEnd(8192, '.')))));
    }
    const leader = await waitFor('a leader', () => leaderOf(members));
    const commit = leader.node!.status().commitIndex;
    await waitFor('every member to apply it all', () => members.every((m) => m.node!.appliedIndex >= commit));
    assert.deepEqual(members.flatMap((m) => logged.get(m.id)!.filter((l) => l.msg === 'replayed')), [], 'a member that never restarted replays nothing');
    const follower = members.find((m) => m !== leader)!;
    await stopMember(follower);
    let appliedWhenSaid = -1;
    logged.set(follower.id, []);
    const record = (msg: string, fields?: Readonly<Record<string, unknown>>): void => {
      if (msg === 'replayed') appliedWhenSaid = follower.node?.appliedIndex ?? -1;
      logged.get(follower.id)!.push({ msg, fields });
    };
    await startMember(follower, members, { ...opts, logger: () => ({ info: record, warn: record, error: record }) });
    const started = logged.get(follower.id)!.find((l) => l.msg === 'core started')!.fields!;
    const said = await waitFor('the replayed line', () => logged.get(follower.id)!.find((l) => l.msg === 'replayed')?.fields);
    assert.ok((started['commitIndex'] as number) >= commit, `it started with the commit index it had: ${JSON.stringify(started)}`);
    assert.equal(said['index'], started['commitIndex'], 'the replay is to the commit index the core started with');
    assert.ok(appliedWhenSaid >= (said['index'] as number), `said once applied there: applied ${appliedWhenSaid}`);
    assert.ok(typeof said['ms'] === 'number' && said['ms'] >= 0);
    // The CPU the process had used by then, on both lines: what the bench prints beside each phase.
    assert.ok(typeof started['cpuMs'] === 'number' && typeof said['cpuMs'] === 'number' && said['cpuMs'] >= started['cpuMs'], `cpu ${String(started['cpuMs'])} → ${String(said['cpuMs'])}`);
    assert.equal(logged.get(follower.id)!.filter((l) => l.msg === 'replayed').length, 1, 'once');
  });
});

test('a restart whose snapshot will not decode beside the running core: start() rejects with why, and the node it started is stopped', async () => {
  const root = mkdtempSync(join(tmpdir(), 'raftkv-node-'));
  const quiet: PeerSender = { send: () => undefined };
  try {
    // One voter: it elects itself, applies three writes and snapshots them.
    const first = await RaftNode.start<number>({ id: 'a', storage: await FileStorage.open(root), stateMachine: new ListMachine(), transport: quiet, initialCluster: { voters: ['a'], votersOutgoing: [], learners: [] }, heartbeatMs: 20, electionMs: 200 });
    await waitFor('a leader', () => first.isLeader);
    for (const v of ['x', 'y', 'z']) await first.propose(new TextEncoder().encode(v));
    assert.ok((await first.snapshotNow()) >= 4);
    await first.stop();

    /** Decodes nothing: what a snapshot the CRC passed but this version cannot read would do. */
    class Unreadable extends ListMachine {
      override restore(): void {
        throw new Error('snapshot format 9 is not known');
      }
    }
    let started: RaftNode<number> | null = null;
    await assert.rejects(
      RaftNode.start<number>({ id: 'a', storage: await FileStorage.open(root), stateMachine: new Unreadable(), transport: quiet, heartbeatMs: 20, electionMs: 200, onCoreStarted: (n) => (started = n) }),
      /snapshot format 9 is not known/,
    );
    assert.ok(started !== null, 'the core had started on the log');
    assert.throws(() => started!.propose(new Uint8Array([1])), StoppedError, 'and was stopped');
    // Its storage was closed with it: the data dir opens again, and loads with a state machine that reads it.
    const again = await RaftNode.start<number>({ id: 'a', storage: await FileStorage.open(root), stateMachine: new ListMachine(), transport: quiet, heartbeatMs: 20, electionMs: 200, onCoreStarted: () => undefined });
    try {
      assert.ok(again.appliedIndex >= 4);
    } finally {
      await again.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
