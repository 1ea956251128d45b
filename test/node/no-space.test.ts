// RaftNode on a full disk (API.md, "Health and limits": a full disk raises the NO_SPACE alarm
// instead of stopping the node, and the alarm clears once space is back). A single voter over
// a REAL small file system (a tmpfs) keeps running through ENOSPC and commits every proposal
// once space is back, none lost and none applied twice; with a storage double: a Ready whose
// sync fails for want of space stays in flight and is retried, a snapshot that does not fit is
// skipped and retried, and any other storage error (EIO) still stops the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RaftNode } from '../../src/node/index.js';
import type { NodeLogger } from '../../src/node/index.js';
import type { Entry, HardState, InitialState, Snapshot, StateMachine } from '../../src/raft/index.js';
import { FileStorage, MemoryStorage, NoSpaceError } from '../../src/storage/index.js';
import type { RaftStorage } from '../../src/storage/index.js';
import { Filler, mountTmpfs } from '../storage/tmpfs.js';

/** Appends every normal entry's text to a list; apply returns the list's new length. */
class ListMachine implements StateMachine<number> {
  items: string[] = [];
  apply(entry: Entry): number {
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

class RecordingNodeLogger implements NodeLogger {
  readonly lines: string[] = [];
  info(msg: string): void {
    this.lines.push(`info ${msg}`);
  }
  warn(msg: string): void {
    this.lines.push(`warn ${msg}`);
  }
  error(msg: string): void {
    this.lines.push(`error ${msg}`);
  }
}

const NO_PEERS = { send(): void {} };

async function waitFor(what: string, probe: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A value of about `bytes` bytes that names its position, so order and duplicates show. */
function value(i: number, bytes: number): string {
  const head = `v${String(i).padStart(5, '0')}:`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

interface Watched {
  readonly node: RaftNode<number>;
  readonly sm: ListMachine;
  readonly noSpace: boolean[];
  readonly fatal: Error[];
  readonly logger: RecordingNodeLogger;
}

async function startSingleVoter(storage: RaftStorage, extra: { snapshotEntries?: number; snapshotCatchUpEntries?: number } = {}): Promise<Watched> {
  const sm = new ListMachine();
  const logger = new RecordingNodeLogger();
  const node = await RaftNode.start<number>({
    id: 'a',
    storage,
    stateMachine: sm,
    transport: NO_PEERS,
    initialCluster: { voters: ['a'], votersOutgoing: [], learners: [] },
    heartbeatMs: 10,
    electionMs: 40,
    logger,
    ...extra,
  });
  const watched: Watched = { node, sm, noSpace: [], fatal: [], logger };
  node.on('no-space', (active: boolean) => watched.noSpace.push(active));
  node.on('fatal', (err: Error) => watched.fatal.push(err));
  await waitFor('a leader', () => node.isLeader);
  return watched;
}

test('a single voter on a full tmpfs keeps running through ENOSPC and commits every proposal once space is back, none lost, none applied twice', { timeout: 90_000 }, async (t) => {
  const fs = mountTmpfs(1024 * 1024);
  if (typeof fs === 'string') {
    t.skip(fs);
    return;
  }
  const dir = join(fs.dir, 'data');
  const filler = new Filler(fs.dir);
  let node: RaftNode<number> | null = null;
  let storage: FileStorage | null = null;
  try {
    storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger: { warn() {} } });
    const w = await startSingleVoter(storage);
    node = w.node;
    const expected: string[] = [];
    for (let i = 0; i < 10; i++) {
      expected.push(value(i, 1024));
      await node.propose(encode(expected[i]!));
    }
    // Less free than a segment: the next one cannot be prepared.
    filler.fill();
    filler.giveBack(32 * 1024);
    // The early warning: once the active segment is half full its successor cannot be
    // prepared, and the alarm rises while writes still go through.
    while (!node.isOutOfSpace) {
      assert.ok(expected.length < 60, 'the alarm rose before the active segment was full');
      expected.push(value(expected.length, 1024));
      await node.propose(encode(expected.at(-1)!));
      await sleep(5);
    }
    assert.deepEqual(w.noSpace, [true]);
    assert.ok(!w.logger.lines.some((l) => l.includes('a write waits for space')), 'raised before any write failed');
    let settled = 0;
    const proposals: Promise<unknown>[] = [];
    for (let i = expected.length; i < 160; i++) {
      expected.push(value(i, 1024));
      proposals.push(node.propose(encode(expected[i]!)).then(() => settled++));
      if (i % 10 === 0) await sleep(5);
    }
    await waitFor('a write that waits for space', () => w.logger.lines.some((l) => l.includes('a write waits for space')));
    await sleep(500);
    assert.ok(settled < proposals.length, `proposals wait while the disk is full (${settled}/${proposals.length} settled)`);
    assert.deepEqual(w.fatal, [], 'no crash');
    assert.equal(node.isLeader, true, 'still running, still leading');
    // More proposals while blocked: they queue in the core.
    for (let i = 160; i < 170; i++) {
      expected.push(value(i, 1024));
      proposals.push(node.propose(encode(expected[i]!)));
    }

    filler.remove();
    await Promise.all(proposals);
    await waitFor('the alarm to clear', () => !node!.isOutOfSpace);
    assert.deepEqual(w.noSpace, [true, false], "'no-space' raised once and cleared once");
    assert.deepEqual(w.fatal, []);
    assert.deepEqual(w.sm.items, expected, 'every proposal applied once, in order');
    await node.stop();
    node = null;
    storage = null;

    const reopened = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger: { warn() {} } });
    const state: InitialState = await reopened.load();
    const logged = state.entries.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => new TextDecoder().decode(e.data));
    assert.deepEqual(logged, expected, 'the log holds every proposal once');
    await reopened.close();
  } finally {
    await node?.stop().catch(() => undefined);
    // A node that stopped itself (fatal) has not closed its storage.
    await storage?.abandon().catch(() => undefined);
    filler.remove();
    fs.unmount();
  }
});

/** MemoryStorage with failures on demand, as FileStorage reports them. */
class FlakyStorage implements RaftStorage {
  readonly inner = new MemoryStorage();
  syncFailure: (() => Error) | null = null;
  snapshotFailure: (() => Error) | null = null;
  syncCalls = 0;
  load(): Promise<InitialState> {
    return this.inner.load();
  }
  loadSnapshot(): Promise<Snapshot | null> {
    return this.inner.loadSnapshot();
  }
  append(entries: readonly Entry[]): void {
    this.inner.append(entries);
  }
  setHardState(state: HardState): void {
    this.inner.setHardState(state);
  }
  async sync(): Promise<void> {
    this.syncCalls++;
    // Like FileStorage: a failed sync leaves everything queued.
    if (this.syncFailure !== null) throw this.syncFailure();
    await this.inner.sync();
  }
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    if (this.snapshotFailure !== null) throw this.snapshotFailure();
    await this.inner.saveSnapshot(snapshot);
  }
  installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.inner.installSnapshot(snapshot);
  }
  compact(index: number): Promise<void> {
    return this.inner.compact(index);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const noSpace = (): Error => new NoSpaceError(Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' }), 'a WAL write');
const ioError = (): Error => Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });

test('a Ready whose sync fails with NoSpaceError stays in flight: retried with backoff, nothing applied early, nothing twice', { timeout: 30_000 }, async () => {
  const storage = new FlakyStorage();
  const w = await startSingleVoter(storage);
  try {
    await w.node.propose(encode('one'));
    storage.syncFailure = noSpace;
    const calls = storage.syncCalls;
    let isApplied = false;
    const pending = Promise.all([w.node.propose(encode('two')), w.node.propose(encode('three'))]).then(() => (isApplied = true));
    await waitFor("'no-space'", () => w.noSpace.length > 0);
    await sleep(700);
    // 100, 200, 400 ms: about four attempts; without backoff there would be hundreds.
    assert.ok(storage.syncCalls - calls >= 2 && storage.syncCalls - calls <= 8, `retried with backoff: ${storage.syncCalls - calls} attempts in ~0.7 s`);
    assert.equal(isApplied, false, 'not committed before its own write is durable (single voter)');
    assert.deepEqual(w.sm.items, ['one']);
    assert.equal(w.node.isOutOfSpace, true);
    storage.syncFailure = null;
    await pending;
    assert.deepEqual(w.sm.items, ['one', 'two', 'three']);
    assert.deepEqual(w.noSpace, [true, false]);
    assert.deepEqual(w.fatal, []);
    const state = await storage.inner.load();
    assert.deepEqual(state.entries.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => new TextDecoder().decode(e.data)), ['one', 'two', 'three']);
  } finally {
    storage.syncFailure = null;
    await w.node.stop();
  }
});

test('stop() ends a wait for space at once, without a fatal error', { timeout: 30_000 }, async () => {
  const storage = new FlakyStorage();
  const w = await startSingleVoter(storage);
  try {
    storage.syncFailure = noSpace;
    const proposal = w.node.propose(encode('never')).catch((err: unknown) => err);
    await waitFor("'no-space'", () => w.noSpace.includes(true));
    // Long enough for the backoff to exceed what the stop below may take.
    await sleep(1600);
    const started = Date.now();
    await w.node.stop();
    assert.ok(Date.now() - started < 1000, `stopped in ${Date.now() - started} ms`);
    assert.match(String(await proposal), /stopping/);
    assert.deepEqual(w.fatal, []);
  } finally {
    storage.syncFailure = null;
    await w.node.stop();
  }
});

test('an automatic snapshot that does not fit is skipped, raises the alarm, and is retried until it fits', { timeout: 30_000 }, async () => {
  const storage = new FlakyStorage();
  const w = await startSingleVoter(storage, { snapshotEntries: 10, snapshotCatchUpEntries: 2 });
  try {
    storage.snapshotFailure = noSpace;
    for (let i = 0; i < 15; i++) await w.node.propose(encode(`s${i}`));
    await waitFor('the alarm', () => w.node.isOutOfSpace);
    assert.equal(w.node.stats.snapshotsTaken, 0);
    // Writes go on meanwhile: only the snapshot waits.
    for (let i = 15; i < 20; i++) await w.node.propose(encode(`s${i}`));
    storage.snapshotFailure = null;
    await waitFor('the snapshot retried', () => w.node.stats.snapshotsTaken > 0, 20_000);
    await waitFor('the alarm to clear', () => !w.node.isOutOfSpace);
    assert.deepEqual(w.noSpace, [true, false]);
    assert.deepEqual(w.fatal, []);
    assert.equal(w.sm.items.length, 20);
  } finally {
    storage.snapshotFailure = null;
    await w.node.stop();
  }
});

test('EIO from a sync still stops the node (fail-stop), with no alarm', { timeout: 30_000 }, async () => {
  const storage = new FlakyStorage();
  const w = await startSingleVoter(storage);
  try {
    storage.syncFailure = ioError;
    void w.node.propose(encode('lost')).catch(() => undefined);
    await waitFor("'fatal'", () => w.fatal.length > 0);
    assert.match(w.fatal[0]!.message, /EIO/);
    assert.throws(() => w.node.propose(encode('after')), /EIO/);
    assert.equal(w.node.isOutOfSpace, false);
    assert.deepEqual(w.noSpace, []);
  } finally {
    storage.syncFailure = null;
    await w.node.stop();
  }
});
