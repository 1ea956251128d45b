// The runtime (src/node/runtime.ts) on ports a test controls: the order in which it carries out
// a Ready's steps (raft/types.ts, `Ready`), early apply while a sync is in flight, a full disk,
// fail-stop, snapshots and reads. Every completion is called by the test, when it chooses, as
// the simulator's event queue would.
import { test } from 'node:test';
import { DEFAULT_NODE_OPTIONS, DEFAULT_RUNTIME_OPTIONS } from '../../src/node/index.js';
import { DEFAULT_NODE_CONFIG } from '../../src/server/node-config.js';
import assert from 'node:assert/strict';
import { BACKGROUND_LOAD_DELAY_MS, Runtime, type Done, type RestoreInProgress, type RuntimeHooks, type SnapshotInProgress } from '../../src/node/runtime.js';
import { Raft, bootstrapState, type ByteWindow, type Configuration, type Entry, type Message, type Snapshot, type SnapshotBytesSource, type SnapshotSource, type SnapshotWriter, type StateMachine } from '../../src/raft/index.js';
import { NoSpaceError } from '../../src/storage/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';

const ABC = { voters: ['a', 'b', 'c'], votersOutgoing: [], learners: [] };
const encode = (s: string): Uint8Array => new TextEncoder().encode(s);

class ListMachine implements StateMachine<number> {
  items: string[] = [];
  apply(e: Entry): number {
    if (e.type === 'normal' && e.data.length > 0) this.items.push(new TextDecoder().decode(e.data));
    return this.items.length;
  }
  snapshot(): Uint8Array {
    return encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(new TextDecoder().decode(data)) as string[];
  }
}

/** A state machine that snapshots in slices (as KvStateMachine does): three steps, of the state it began with. */
class SlicedListMachine extends ListMachine {
  abandoned = 0;
  beginSnapshot(): SnapshotInProgress {
    // Copy at the start: the simplest copy-on-write.
    const captured = encode(JSON.stringify(this.items));
    let stepsLeft = 3;
    return {
      step: () => (--stepsLeft > 0 ? null : captured),
      abandon: () => void this.abandoned++,
    };
  }
}

/**
 * A state machine that writes its snapshot into the writer the runtime gives it (as KvStateMachine
 * does into FileStorage's), half a slice at a time; `failure`, if set, is thrown by the step that
 * would write (as a writer that found the disk full throws).
 */
class WritingListMachine extends ListMachine {
  failure: Error | null = null;
  abandoned = 0;
  beginSnapshot(writer?: SnapshotWriter | null): SnapshotInProgress {
    const captured = encode(JSON.stringify(this.items));
    let step = 0;
    return {
      step: () => {
        if (writer === undefined || writer === null) return captured;
        if (this.failure !== null) throw this.failure;
        const half = captured.length >> 1;
        if (step++ === 0) {
          writer.begin(captured.length);
          writer.write(captured.slice(0, half), half);
          return null;
        }
        writer.write(captured.slice(half), captured.length - half);
        return writer.isWritten() ? 'written' : null;
      },
      abandon: () => void this.abandoned++,
    };
  }
}

/** Ports that write down every call, and hold every completion until the test releases it. */
class World {
  readonly log: string[] = [];
  readonly sent: Message[] = [];
  readonly syncs: Done[] = [];
  /** saveSnapshot() completions, held when the World is made with holdSaves. */
  readonly saves: Done[] = [];
  readonly timers: { ms: number; fire: () => void }[] = [];
  syncFailure: (() => Error) | null = null;
  readonly sm: ListMachine;
  readonly runtime: Runtime<number>;

  /** The newest snapshot the storage holds, when it reads snapshots back (readBack). */
  stored: Snapshot | null = null;

  constructor(hooks: RuntimeHooks<number> = {}, snapshotEntries = Number.POSITIVE_INFINITY, holdSaves = false, sm: ListMachine = new ListMachine(), snapshotLogPercent?: number, readBack = false, maxCommittedBytesPerReady?: number, snapshotLogBytes?: number, snapshotIdleTicks?: number, extra: { readonly config?: Configuration; readonly snapshotStagger?: boolean; readonly writer?: boolean } = {}) {
    this.sm = sm;
    const core = new Raft({ id: 'a', random: () => 0.5, preVote: false, checkQuorum: false, ...(maxCommittedBytesPerReady !== undefined ? { maxCommittedBytesPerReady } : {}) }, bootstrapState(extra.config ?? ABC));
    this.runtime = new Runtime<number>({
      core,
      storage: {
        append: (entries) => this.log.push(`append ${entries.map((e) => e.index).join(',')}`),
        setHardState: (hs) => this.log.push(`hardState t${hs.currentTerm} c${hs.commitIndex}`),
        sync: (done) => {
          this.log.push('sync');
          if (this.syncFailure !== null) done(this.syncFailure());
          else this.syncs.push(done);
        },
        installSnapshot: (s, done) => {
          this.log.push(`installSnapshot ${s.meta.index}`);
          this.stored = s;
          done(null);
        },
        saveSnapshot: (s, done) => {
          this.log.push(`saveSnapshot ${s.meta.index}`);
          this.stored = s;
          if (holdSaves) this.saves.push(done);
          else done(null);
        },
        compact: (index, done) => {
          this.log.push(`compact ${index}`);
          done(null);
        },
        ...(readBack ? { readSnapshot: () => (this.log.push('readSnapshot'), this.stored) } : {}),
        // Writers of the memory twin, as FileStorage offers them (a file written as it is serialized).
        ...(extra.writer === true
          ? {
              snapshotWriter: (meta) => {
                this.log.push(`snapshotWriter ${meta.index}`);
                const writer = new MemoryStorage().snapshotWriter(meta);
                const abandon = writer.abandon.bind(writer);
                writer.abandon = () => (this.log.push(`abandonWriter ${meta.index}`), abandon());
                return writer;
              },
              saveWrittenSnapshot: (writer, done) => {
                this.log.push(`saveWrittenSnapshot ${writer.meta.index}`);
                this.stored = MemoryStorage.written(writer);
                done(null);
              },
            }
          : {}),
      },
      transport: {
        send: (m) => {
          this.sent.push(m);
          this.log.push(`send ${m.type} ${m.to}`);
        },
        flush: () => this.log.push('flush'),
      },
      stateMachine: this.sm,
      clock: { now: () => 0, setTimer: (ms, fire) => (this.timers.push({ ms, fire }), () => undefined) },
      applied: 0,
      latestSnapshot: null,
      snapshotEntries,
      snapshotCatchUpEntries: 1,
      ...(snapshotLogPercent !== undefined ? { snapshotLogPercent } : {}),
      ...(snapshotLogBytes !== undefined ? { snapshotLogBytes } : {}),
      ...(snapshotIdleTicks !== undefined ? { snapshotIdleTicks } : {}),
      ...(extra.snapshotStagger !== undefined ? { snapshotStagger: extra.snapshotStagger } : {}),
      hooks: {
        ...hooks,
        applied: (e) => this.log.push(`apply ${e.index}`),
        advanced: () => this.log.push('advance'),
      },
    });
    // The founding entry is committed already: the first Ready applies it.
    this.runtime.pump();
    this.log.length = 0;
  }

  get core(): Raft {
    return this.runtime.core;
  }

  /** Completes the oldest sync in flight. */
  completeSync(): void {
    const done = this.syncs.shift();
    assert.ok(done !== undefined, 'a sync is in flight');
    done(null);
  }

  /** Elects `a` (b grants its vote) and completes everything: a leader with nothing in flight. */
  elect(): void {
    this.core.campaign();
    this.runtime.pump();
    this.completeSync();
    this.runtime.receive({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 2, preVote: false, voteGranted: true });
    this.runtime.pump();
    while (this.syncs.length > 0) this.completeSync();
    this.ack('b', 2);
    this.ack('c', 2);
    this.runtime.pump();
    while (this.syncs.length > 0) this.completeSync();
    this.log.length = 0;
    this.sent.length = 0;
  }

  /** Proposes v0, v1, … (b acknowledging each, every sync completed) until `isDone`: a snapshot becomes due within 10. */
  proposeUntil(isDone: () => boolean): void {
    for (let i = 0; !isDone(); i++) {
      assert.ok(i < 10, 'a snapshot becomes due');
      this.core.propose(encode(`v${i}`));
      this.runtime.pump();
      this.ack('b', this.core.lastIndex);
      while (this.syncs.length > 0) this.completeSync();
      this.runtime.pump();
    }
  }

  /** The leader proposes `data`, b acknowledges it, and every Ready and sync completes. */
  commitOne(data: Uint8Array): void {
    this.core.propose(data);
    this.runtime.pump();
    this.ack('b', this.core.lastIndex);
    this.completeSync();
    this.runtime.pump();
    while (this.syncs.length > 0) this.completeSync();
  }

  ack(from: string, matchIndex: number): void {
    this.runtime.receive({ type: 'AppendEntriesResponse', from, to: 'a', term: 2, success: true, matchIndex, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 0 });
  }
}

test('thesis §10.2.1 early apply takes a long backlog a part at a time, as the core bounds a Ready (maxCommittedBytesPerReady)', () => {
  const w = new World({}, Number.POSITIVE_INFINITY, false, new ListMachine(), undefined, false, 250);
  w.elect();
  for (const v of ['a', 'b', 'c', 'd', 'e', 'f']) w.core.propose(encode(v.repeat(100)));
  w.runtime.pump();
  const last = w.core.lastIndex;
  w.log.length = 0;
  w.ack('b', last);
  w.ack('c', last);
  assert.equal(w.core.commitIndex, last, 'b and c hold all six durably: committed, our own sync still in flight');
  const applied = (): number => w.log.filter((l) => l.startsWith('apply')).length;
  assert.ok(applied() >= 1 && applied() < 6, `one turn applies a part of the backlog (${applied()} of 6), not all of it`);
  // Further turns (the Readies after the sync) apply the rest, each entry once, in order.
  w.completeSync();
  for (let i = 0; i < 10 && w.runtime.appliedIndex < last; i++) {
    w.runtime.pump();
    while (w.syncs.length > 0) w.completeSync();
  }
  assert.equal(w.runtime.appliedIndex, last);
  assert.deepEqual(w.sm.items, ['a', 'b', 'c', 'd', 'e', 'f'].map((v) => v.repeat(100)));
});

test('thesis §10.2.1 early apply takes a bounded number of parts per Ready in flight, however many messages arrive meanwhile (a burst of acknowledgements does not hold the loop)', () => {
  const w = new World({}, Number.POSITIVE_INFINITY, false, new ListMachine(), undefined, false, 250);
  w.elect();
  // Forty entries of 100 B: a part is three of them (the bound is 250 B), all of them ~13 parts.
  const values = Array.from({ length: 40 }, (_, i) => `${i}`.padStart(100, '.'));
  for (const v of values) w.core.propose(encode(v));
  w.runtime.pump();
  const last = w.core.lastIndex;
  w.log.length = 0;
  const applied = (): number => w.log.filter((l) => l.startsWith('apply')).length;
  w.ack('b', last);
  w.ack('c', last);
  assert.equal(w.core.commitIndex, last, 'all forty committed while our own sync is in flight');
  assert.ok(applied() >= 1 && applied() <= 3, `one acknowledgement, one part (${applied()} of 40)`);
  // A burst, as one turn of the loop can bring it: heartbeat answers and repeated acknowledgements.
  for (let i = 0; i < 20; i++) w.ack(i % 2 === 0 ? 'b' : 'c', last);
  const early = applied();
  assert.ok(early > 3, `the replay goes on beside the sync: ${early} applied`);
  assert.ok(early * 100 <= 4 * 250 + 100, `at most four parts' bytes while one Ready is in flight, not a part per message: ${early} applied`);
  assert.equal(w.syncs.length, 1, 'the sync is still the one in flight');
  // The sync completes: the Readies after it take the rest, and early apply gets a new budget
  // while each of them is in flight.
  w.completeSync();
  for (let i = 0; i < 40 && w.runtime.appliedIndex < last; i++) {
    w.runtime.pump();
    w.ack('b', last);
    while (w.syncs.length > 0) w.completeSync();
  }
  assert.equal(w.runtime.appliedIndex, last);
  assert.deepEqual(w.sm.items, values, 'each entry once, in order');
});

test('a long backlog of committed entries (a replay) is applied a part per pump() when the host takes turns between parts (yielded), at once without the hook', () => {
  const values = [...'abcdefgh'].map((v) => v.repeat(100));
  for (const takesTurns of [true, false]) {
    let yields = 0;
    const w = new World(takesTurns ? { yielded: () => void yields++ } : {}, Number.POSITIVE_INFINITY, false, new ListMachine(), undefined, false, 250);
    // As a follower: b leads term 2 and sends eight committed entries at once.
    const entries = values.map((v, i) => ({ index: 2 + i, term: 2, type: 'normal' as const, data: encode(v) }));
    w.runtime.receive({ type: 'AppendEntries', from: 'b', to: 'a', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries, leaderCommit: 9, seq: 1 });
    w.runtime.pump();
    w.completeSync();
    if (takesTurns) {
      const parts: number[] = [w.runtime.appliedIndex];
      for (let i = 0; i < 20 && w.runtime.appliedIndex < 9; i++) {
        w.runtime.pump(); // what RaftNode's setImmediate does after each yield
        parts.push(w.runtime.appliedIndex);
      }
      assert.ok(yields >= 2 && parts[0]! < 9, `stopped between parts: applied ${parts.join(' → ')}, ${yields} yields`);
      assert.equal(w.runtime.stats.yieldsInBacklog, yields);
    } else {
      assert.equal(yields, 0);
    }
    assert.equal(w.runtime.appliedIndex, 9, 'all of it in the end');
    assert.deepEqual(w.sm.items, values, 'each entry once, in order');
  }
});

test('Ready steps 1–8: a leader sends its AppendEntries before it queues its write, and advances only after the sync', () => {
  const w = new World();
  w.elect();
  const before = w.runtime.stats.sentBeforeSync;
  w.core.propose(encode('x'));
  w.runtime.pump();
  assert.deepEqual(w.log, ['send AppendEntries b', 'send AppendEntries c', 'flush', 'append 3', 'sync']);
  assert.equal(w.runtime.isIdle, false, 'the Ready waits for its sync');
  assert.equal(w.runtime.stats.sentBeforeSync - before, 2);
  w.completeSync();
  assert.deepEqual(w.log.slice(5), ['advance']);
});

test('Ready step 7: a candidate asks for votes only after its new term and vote are durable', () => {
  const w = new World();
  w.core.campaign();
  w.runtime.pump();
  assert.deepEqual(w.log, ['hardState t2 c1', 'sync'], 'nothing leaves before the sync');
  w.completeSync();
  assert.deepEqual(w.log.slice(2), ['send RequestVote b', 'send RequestVote c', 'flush', 'advance']);
});

test('thesis §10.2.1 entries the followers made durable are applied while the leader\'s own sync is still in flight (early apply)', () => {
  const w = new World();
  w.elect();
  w.core.propose(encode('x'));
  w.runtime.pump();
  w.log.length = 0;
  w.ack('b', 3);
  w.ack('c', 3);
  assert.equal(w.core.commitIndex, 3, 'b and c hold it durably: committed');
  assert.deepEqual(w.log, ['apply 3'], 'applied at once, before our sync completes');
  assert.deepEqual(w.sm.items, ['x']);
  assert.equal(w.runtime.stats.appliedEarly, 1);
  w.completeSync();
  assert.ok(w.log.includes('hardState t2 c3'), 'the next Ready carries the commit');
  assert.equal(w.log.filter((l) => l === 'apply 3').length, 1, 'the next Ready hands it out again; it is not applied twice');
  assert.equal(w.runtime.appliedIndex, 3);
});

test('a Ready whose only write is a commitIndex-only hard state is not synced', () => {
  const w = new World();
  w.elect();
  w.core.propose(encode('x'));
  w.runtime.pump();
  w.completeSync();
  w.log.length = 0;
  w.ack('b', 3);
  w.runtime.pump();
  assert.ok(w.log.includes('hardState t2 c3'));
  assert.ok(!w.log.includes('sync'), `no sync for it: ${w.log.join(' | ')}`);
  assert.equal(w.runtime.isIdle, true);
});

test('a full disk keeps the Ready in flight and retries its sync with backoff under the alarm; EIO stops the runtime', () => {
  const alarms: boolean[] = [];
  const fatal: Error[] = [];
  const w = new World({ spaceAlarm: (on) => alarms.push(on), fatal: (err) => fatal.push(err) });
  w.elect();
  w.syncFailure = () => new NoSpaceError(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }), 'a WAL write');
  w.core.propose(encode('x'));
  w.runtime.pump();
  assert.deepEqual(alarms, [true]);
  assert.deepEqual(w.timers.map((t) => t.ms), [100]);
  w.timers.shift()!.fire();
  assert.deepEqual(w.timers.map((t) => t.ms), [200], 'backoff doubles');
  assert.equal(w.runtime.isIdle, false, 'still in flight');
  assert.ok(!w.log.includes('advance'));
  w.syncFailure = null;
  w.timers.shift()!.fire();
  w.completeSync();
  assert.deepEqual(alarms, [true, false]);
  assert.equal(w.runtime.isIdle, true);

  w.syncFailure = () => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  w.core.propose(encode('y'));
  w.runtime.pump();
  assert.match(fatal[0]?.message ?? '', /EIO/);
  assert.equal(w.runtime.failed, fatal[0]);
  assert.deepEqual(alarms, [true, false], 'no alarm for EIO');
});

test('§7 a snapshot is taken once enough is applied, BEFORE the next Ready, and the log compacted behind it', () => {
  const taken: number[] = [];
  const w = new World({ snapshotTaken: (s) => taken.push(s.meta.index) }, 3);
  w.elect();
  for (const v of ['x', 'y', 'z']) {
    w.core.propose(encode(v));
    w.runtime.pump();
    w.ack('b', w.core.lastIndex);
    w.completeSync();
  }
  w.runtime.pump();
  while (w.syncs.length > 0) w.completeSync();
  assert.ok(taken.length > 0, `a snapshot was taken: ${w.log.join(' | ')}`);
  const index = taken[0]!;
  assert.ok(w.log.includes(`saveSnapshot ${index}`) && w.log.includes(`compact ${index - 1}`));
  assert.equal(w.core.snapshotIndex, index - 1, 'one entry kept behind it');
  assert.equal(w.runtime.latestSnapshotMeta?.index, index);
});

test('§7 snapshot work follows what is written: the next snapshot waits until the log since the last holds a share of its size', () => {
  // A list machine's snapshot is its JSON: after the first one, each 100-byte entry adds ~103
  // bytes to the state. With 100 %, the next snapshot waits until the log since the last has as
  // many bytes as that snapshot, however many entries snapshotEntries asks for.
  const run = (percent: number): number[] => {
    const taken: number[] = [];
    const w = new World({ snapshotTaken: (s) => taken.push(s.meta.index) }, 2, false, new ListMachine(), percent);
    w.elect();
    for (let i = 0; i < 40; i++) w.commitOne(encode(String(i % 10).repeat(100)));
    return taken;
  };
  const byEntries = run(0);
  const byBytes = run(100);
  assert.ok(byEntries.length >= 15, `entries alone: a snapshot every few entries (${byEntries.join(',')})`);
  // Each gap is at least the number of entries the previous snapshot's size in bytes took.
  for (let i = 1; i < byBytes.length; i++) {
    const sizeBefore = JSON.stringify(Array.from({ length: byBytes[i - 1]! - 3 }, () => 'x'.repeat(100))).length;
    assert.ok((byBytes[i]! - byBytes[i - 1]!) * 100 >= sizeBefore, `snapshot at ${byBytes[i]} came ${byBytes[i]! - byBytes[i - 1]!} entries after ${byBytes[i - 1]}, before ${sizeBefore} bytes`);
  }
  assert.ok(byBytes.length >= 3 && byBytes.length < byEntries.length / 2, `fewer snapshots as the state grows (${byBytes.join(',')})`);
});

test('§7 large entries: a snapshot is due once the log since the last holds snapshotLogBytes, however few entries', () => {
  const run = (percent: number, logBytes?: number): number[] => {
    const taken: number[] = [];
    const w = new World({ snapshotTaken: (s) => taken.push(s.meta.index) }, 1_000, false, new ListMachine(), percent, false, undefined, logBytes);
    w.elect();
    for (let i = 0; i < 40; i++) w.commitOne(encode(String(i % 10).repeat(300)));
    return taken;
  };
  assert.deepEqual(run(0), [], 'no snapshot before 1,000 entries under the default byte bound (64 MiB)');
  const byBytes = run(0, 1_000);
  // Each entry carries 300 bytes: the fourth since the last snapshot brings the log to 1,200.
  assert.ok(byBytes.length >= 8, `a snapshot every few entries (${byBytes.join(',')})`);
  for (let i = 1; i < byBytes.length; i++) assert.ok(byBytes[i]! - byBytes[i - 1]! >= 4, `no sooner than 1,000 bytes: ${byBytes.join(',')}`);
  // The share of the state still holds: with 100 %, a snapshot waits for a log as large as the last one.
  const withShare = run(100, 1_000);
  assert.ok(withShare.length >= 2 && withShare.length < byBytes.length / 2, `the percent rule still spaces them (${withShare.join(',')} against ${byBytes.join(',')})`);
});

test('a Ready that commits entries another member waits for sends the new commit index before applying them (isCommitAwaited)', () => {
  for (const isAwaited of [true, false]) {
    const w = new World({ isCommitAwaited: () => isAwaited });
    w.elect();
    w.core.propose(encode('x'));
    w.runtime.pump();
    while (w.syncs.length > 0) w.completeSync();
    const index = w.core.lastIndex;
    const flushedBefore = w.runtime.stats.commitsSentAtOnce;
    w.log.length = 0;
    // The leader's own write is durable; b's acknowledgement commits the entry.
    w.ack('b', index);
    w.runtime.pump();
    const applyAt = w.log.indexOf(`apply ${index}`);
    const flushAt = w.log.indexOf('flush');
    const commitSentAt = w.log.indexOf('send AppendEntries b');
    assert.ok(applyAt >= 0 && commitSentAt >= 0 && commitSentAt < applyAt, w.log.join(' | '));
    if (isAwaited) assert.ok(flushAt > commitSentAt && flushAt < applyAt, `flushed before applying: ${w.log.join(' | ')}`);
    else assert.ok(flushAt === -1 || flushAt > applyAt, `left to the turn's batch: ${w.log.join(' | ')}`);
    assert.equal(w.runtime.stats.commitsSentAtOnce - flushedBefore, isAwaited ? 1 : 0);
  }
});

test('a leader whose durable index another member awaits announces it to that member at once, once, and flushes it (stableAwaitedBy)', () => {
  for (const isAwaited of [true, false]) {
    const w = new World({ stableAwaitedBy: (stable, commit) => (isAwaited && stable > commit ? ['b'] : null) });
    w.elect();
    w.core.propose(encode('x'));
    w.runtime.pump();
    const index = w.core.lastIndex;
    const announcedBefore = w.runtime.stats.stableAnnounced;
    w.sent.length = 0;
    w.log.length = 0;
    // The leader's own sync completes before any follower acknowledges: not committed yet.
    w.completeSync();
    w.runtime.pump();
    assert.ok(w.core.commitIndex < index, 'no majority yet');
    const notices = w.sent.filter((m) => m.type === 'AppendEntries' && m.entries.length === 0 && m.leaderStable === index);
    const flushAt = w.log.indexOf('flush');
    if (isAwaited) {
      assert.deepEqual(notices.map((m) => m.to), ['b'], `only the member that waits: ${w.log.join(' | ')}`);
      assert.ok(flushAt > w.log.lastIndexOf('send AppendEntries b'), `flushed at once: ${w.log.join(' | ')}`);
      // Another advance with nothing new durable repeats nothing.
      w.sent.length = 0;
      w.core.propose(encode('y'));
      w.runtime.pump();
      assert.equal(w.sent.filter((m) => m.type === 'AppendEntries' && m.entries.length === 0).length, 0);
    } else {
      assert.equal(notices.length, 0, w.log.join(' | '));
    }
    assert.equal(w.runtime.stats.stableAnnounced - announcedBefore, isAwaited ? 1 : 0);
  }
});

test('§7 a storage that reads snapshots back: the runtime keeps no bytes, and reads them when a follower needs a snapshot', () => {
  for (const readBack of [false, true]) {
    const w = new World({}, 3, false, new ListMachine(), 0, readBack);
    w.elect();
    for (const v of ['x', 'y', 'z', 'w']) w.commitOne(encode(v));
    const meta = w.runtime.latestSnapshotMeta;
    assert.ok(meta !== null && w.core.snapshotIndex > 1, 'a snapshot was taken and the log compacted');
    // c lost everything: the leader backs up past its compacted log and sends the snapshot.
    w.log.length = 0;
    w.sent.length = 0;
    w.runtime.receive({ type: 'AppendEntriesResponse', from: 'c', to: 'a', term: 2, success: false, matchIndex: 0, rejectedIndex: w.core.lastIndex, conflictTerm: 0, conflictIndex: 1, seq: 0 });
    w.runtime.pump();
    while (w.syncs.length > 0) w.completeSync();
    const install = w.sent.find((m) => m.type === 'InstallSnapshot');
    assert.ok(install !== undefined && install.type === 'InstallSnapshot', `an InstallSnapshot was sent: ${w.log.join(' | ')}`);
    assert.equal(install.snapshot.meta.index, meta.index);
    assert.deepEqual(install.snapshot.data, w.stored!.data, 'the bytes the storage holds');
    assert.equal(w.log.includes('readSnapshot'), readBack, readBack ? 'read back from storage' : 'kept in memory, no storage to read back');
    assert.equal(w.runtime.stats.snapshotsReadBack, readBack ? 1 : 0);
  }
});

test('thesis §6.4 a read is served once the state machine has applied its index, not before', () => {
  const ready: number[] = [];
  const w = new World({ readReady: (id) => ready.push(id) });
  w.elect();
  w.runtime.awaitApplied(7, 2);
  assert.deepEqual(ready, [7], 'already applied');
  w.core.propose(encode('x'));
  w.runtime.pump();
  w.runtime.awaitApplied(8, 3);
  w.ack('b', 3);
  assert.deepEqual(ready, [7], 'not committed yet: b alone is no durable majority');
  w.ack('c', 3);
  assert.deepEqual(ready, [7, 8], 'served as soon as entry 3 is applied (early)');
});

/** The index of the snapshot whose save the log shows, or 0. */
function savedIndex(w: World): number {
  const line = w.log.find((l) => l.startsWith('saveSnapshot'));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

test('§7 Readies are carried out while a local snapshot is being saved; the log is compacted only once it is durable', () => {
  const taken: number[] = [];
  const w = new World({ snapshotTaken: (s) => taken.push(s.meta.index) }, 3, true);
  w.elect();
  w.proposeUntil(() => savedIndex(w) !== 0);
  const index = savedIndex(w);
  assert.equal(w.saves.length, 1, 'the save is in flight');
  w.log.length = 0;

  w.core.propose(encode('meanwhile'));
  w.runtime.pump();
  const last = w.core.lastIndex;
  assert.deepEqual(w.log, ['send AppendEntries b', 'send AppendEntries c', 'flush', `append ${last}`, 'sync'], 'a Ready is taken and carried out beside the save');
  w.ack('b', last);
  w.completeSync();
  assert.ok(w.log.includes(`apply ${last}`) && w.log.includes('advance'), w.log.join(' | '));
  assert.equal(w.runtime.isReadyInFlight, false);
  assert.equal(w.runtime.isIdle, false, 'the snapshot is still in flight');
  assert.equal(w.runtime.snapshotInFlight?.phase, 'saving');
  assert.ok(!w.log.some((l) => l.startsWith('compact')), 'nothing is compacted before the snapshot is durable');
  assert.equal(w.core.snapshotIndex, 0);
  assert.deepEqual(taken, []);

  w.saves.shift()!(null);
  assert.ok(w.log.includes(`compact ${index - 1}`), w.log.join(' | '));
  assert.equal(w.core.snapshotIndex, index - 1, 'the core compacts behind the durable snapshot, with a Ready done since');
  assert.deepEqual(taken, [index]);
  assert.equal(w.runtime.latestSnapshotMeta?.index, index);
  assert.equal(w.runtime.isIdle, true);
  assert.equal(w.runtime.snapshotInFlight, null);
});

/** A follower of b whose local snapshot (of entries 2–6, committed) is being saved. */
function followerSaving(hooks: RuntimeHooks<number> = {}): World {
  const w = new World(hooks, 3, true);
  const entries = [2, 3, 4, 5, 6].map((index): Entry => ({ index, term: 2, type: 'normal', data: encode(`e${index}`) }));
  w.runtime.receive({ type: 'AppendEntries', from: 'b', to: 'a', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries, leaderCommit: 6, seq: 1 });
  w.runtime.pump();
  w.completeSync();
  assert.equal(savedIndex(w), 6, `a local snapshot started: ${w.log.join(' | ')}`);
  assert.deepEqual(w.sm.items, ['e2', 'e3', 'e4', 'e5', 'e6']);
  w.log.length = 0;
  return w;
}

const LEADER_SNAPSHOT = { meta: { index: 20, term: 2, config: ABC }, data: encode(JSON.stringify(['from b'])) };

test("§7 a leader's snapshot to install waits for the local save in flight, then installs", () => {
  const w = followerSaving();
  w.runtime.receive({ type: 'InstallSnapshot', from: 'b', to: 'a', term: 2, snapshot: LEADER_SNAPSHOT, seq: 2 });
  w.runtime.pump();
  assert.equal(w.runtime.isReadyInFlight, true, 'the Ready with the snapshot is taken');
  assert.ok(!w.log.includes('installSnapshot 20'), `it waits: the storage stores one snapshot at a time (${w.log.join(' | ')})`);
  w.saves.shift()!(null);
  assert.ok(!w.log.some((l) => l.startsWith('compact')), "the core's log restarts after the leader's snapshot: nothing of ours to compact");
  assert.ok(w.log.includes('installSnapshot 20'), w.log.join(' | '));
  w.completeSync();
  assert.deepEqual(w.sm.items, ['from b']);
  assert.equal(w.runtime.latestSnapshotMeta?.index, 20, 'the newest snapshot is the installed one, not ours');
  assert.ok(w.sent.some((m) => m.type === 'InstallSnapshotResponse'));
  assert.equal(w.runtime.isIdle, true);
});

test('§7 stopped while an install waits for a local save: the install is abandoned, stop() completes once the save does', () => {
  const w = followerSaving();
  w.runtime.receive({ type: 'InstallSnapshot', from: 'b', to: 'a', term: 2, snapshot: LEADER_SNAPSHOT, seq: 2 });
  w.runtime.pump();
  let isStopped = false;
  w.runtime.stop(() => (isStopped = true));
  assert.equal(isStopped, false, 'the save is still in flight');
  w.saves.shift()!(null);
  assert.equal(isStopped, true);
  assert.ok(!w.log.includes('installSnapshot 20'), 'nothing of the abandoned Ready was written');
  assert.ok(!w.sent.some((m) => m.type === 'InstallSnapshotResponse'));
});

test('a local snapshot that does not fit raises the alarm and is retried later; the install that waited goes on at once', () => {
  const alarms: boolean[] = [];
  const w = followerSaving({ spaceAlarm: (on) => alarms.push(on) });
  w.runtime.receive({ type: 'InstallSnapshot', from: 'b', to: 'a', term: 2, snapshot: LEADER_SNAPSHOT, seq: 2 });
  w.runtime.pump();
  w.saves.shift()!(new NoSpaceError(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }), 'saving a snapshot'));
  assert.deepEqual(alarms, [true]);
  assert.deepEqual(w.timers.map((t) => t.ms), [1000]);
  assert.ok(w.log.includes('installSnapshot 20'));
  w.completeSync();
  assert.equal(w.runtime.latestSnapshotMeta?.index, 20);
});

/** A leader whose state machine snapshots in slices, with a snapshot being serialized (its next slice's timer pending). */
function leaderSerializing(sm: SlicedListMachine, hooks: RuntimeHooks<number> = {}): World {
  const w = new World(hooks, 3, false, sm);
  w.elect();
  w.proposeUntil(() => w.timers.some((t) => t.ms === 0));
  return w;
}

test('§7 a snapshot serialized in slices, one per clock turn: Readies and applies go on between them, and it holds the state it began with', () => {
  const taken: string[] = [];
  const w = leaderSerializing(new SlicedListMachine(), { snapshotTaken: (s) => taken.push(new TextDecoder().decode(s.data)) });
  const began = JSON.stringify(w.sm.items);
  assert.equal(savedIndex(w), 0, 'not saved before it is serialized');
  w.log.length = 0;
  w.core.propose(encode('meanwhile'));
  w.runtime.pump();
  w.ack('b', w.core.lastIndex);
  w.completeSync();
  assert.ok(w.log.includes(`apply ${w.core.lastIndex}`) && w.log.includes('advance'), w.log.join(' | '));
  assert.equal(w.runtime.stats.appliedWhileSerializing, 1);
  assert.equal(w.runtime.snapshotInFlight?.phase, 'serializing', 'what a held loop is told (event loop held)');
  for (let slice = w.timers.findIndex((t) => t.ms === 0); slice >= 0; slice = w.timers.findIndex((t) => t.ms === 0)) w.timers.splice(slice, 1)[0]!.fire();
  assert.ok(savedIndex(w) > 0, 'saved once serialized');
  assert.notEqual(w.runtime.snapshotInFlight?.phase, 'serializing');
  assert.deepEqual(taken, [began], 'the snapshot holds the state it began with, not what was applied meanwhile');
  assert.ok(!began.includes('meanwhile') && w.sm.items.includes('meanwhile'));
});

test('stop() gives up a snapshot still being serialized at once: nothing of it was written', () => {
  const sm = new SlicedListMachine();
  const w = leaderSerializing(sm);
  let isStopped = false;
  w.runtime.stop(() => (isStopped = true));
  assert.equal(isStopped, true);
  assert.equal(sm.abandoned, 1);
  for (const t of w.timers.filter((t) => t.ms === 0)) t.fire();
  assert.equal(savedIndex(w), 0);
});

test('§7 an idle member compacts its log once it holds a quarter of what a snapshot asks: not sooner, not while entries keep coming, not when off', () => {
  // snapshotEntries 40: a quarter is 10 entries since the latest snapshot (none yet: since 0).
  const world = (idleTicks: number | undefined): { w: World; taken: number[] } => {
    const taken: number[] = [];
    const w = new World({ snapshotTaken: (snap) => taken.push(snap.meta.index) }, 40, false, new ListMachine(), 0, false, undefined, undefined, idleTicks);
    w.elect();
    return { w, taken };
  };
  /** c, which commitOne leaves out, acknowledges everything too: no member is behind. */
  const allAcked = (w: World): void => {
    w.ack('c', w.core.lastIndex);
    w.runtime.pump();
    while (w.syncs.length > 0) w.completeSync();
  };
  const tick = (w: World, n: number): void => {
    for (let i = 0; i < n; i++) {
      w.runtime.tick();
      w.runtime.pump();
      while (w.syncs.length > 0) w.completeSync();
    }
  };
  // Ten entries and five idle ticks: due at the fifth, once.
  const idle = world(5);
  for (let i = 0; i < 10; i++) idle.w.commitOne(encode(`v${i}`));
  allAcked(idle.w);
  const applied = idle.w.runtime.appliedIndex;
  tick(idle.w, 4);
  assert.deepEqual(idle.taken, [], 'not before snapshotIdleTicks');
  tick(idle.w, 1);
  assert.deepEqual(idle.taken, [applied], 'at the applied index, once idle');
  assert.equal(idle.w.runtime.stats.idleSnapshots, 1);
  assert.ok(idle.w.log.includes(`compact ${applied - 1}`), `the log compacted behind it: ${idle.w.log.join(' | ')}`);
  tick(idle.w, 50);
  assert.equal(idle.taken.length, 1, 'nothing new since: no second one');

  // Fewer than a quarter: an idle member keeps its log.
  const few = world(5);
  for (let i = 0; i < 5; i++) few.w.commitOne(encode(`v${i}`));
  allAcked(few.w);
  tick(few.w, 50);
  assert.deepEqual(few.taken, [], 'a short log is not worth a snapshot');

  // Entries every few ticks: never idle for five.
  const busy = world(5);
  for (let i = 0; i < 30; i++) {
    busy.w.commitOne(encode(`v${i}`));
    allAcked(busy.w);
    tick(busy.w, 3);
  }
  assert.deepEqual(busy.taken, [], 'a member applying entries is not idle');
  tick(busy.w, 5);
  assert.equal(busy.taken.length, 1, 'until it is');

  // A leader whose member c missed the writes (down): the idle rule waits, so c can still catch
  // up from the log; once c has them, the idle snapshot comes.
  const behind = world(5);
  for (let i = 0; i < 12; i++) behind.w.commitOne(encode(`v${i}`));
  tick(behind.w, 50);
  assert.deepEqual(behind.taken, [], 'c is more than snapshotCatchUpEntries behind: no idle snapshot');
  allAcked(behind.w);
  tick(behind.w, 5);
  assert.equal(behind.taken.length, 1, 'c caught up: the idle snapshot');

  // A count of ticks, or nothing: NaN, negative or fractional would make the rule always or never due.
  for (const bad of [Number.NaN, -1, 2.5]) assert.throws(() => world(bad), /snapshotIdleTicks must be a whole number/, String(bad));

  // Off (the runtime's default): no snapshot however long it idles.
  const off = world(undefined);
  for (let i = 0; i < 20; i++) off.w.commitOne(encode(`v${i}`));
  tick(off.w, 200);
  assert.deepEqual(off.taken, [], 'snapshotIdleTicks 0: off');
});

test('§7 members snapshot apart (snapshotStagger): the first snapshot by count after a start or an idle one waits 1 + slot/n times the count, the next ones the count; off, or first in id order: at the count', () => {
  // a is third of five in id order (learners 0 and 1 first): slot 2, a stretch of 1 + 2/5.
  const FIVE = { voters: ['a', 'b', 'c'], votersOutgoing: [], learners: ['0', '1'] };
  const world = (config: Configuration, snapshotStagger: boolean | undefined): { w: World; taken: number[]; commitTo: (index: number) => void } => {
    const taken: number[] = [];
    const w = new World({ snapshotTaken: (snap) => taken.push(snap.meta.index) }, 20, false, new ListMachine(), 0, false, undefined, undefined, 5, { config, ...(snapshotStagger !== undefined ? { snapshotStagger } : {}) });
    w.elect();
    const commitTo = (index: number): void => {
      while (w.runtime.appliedIndex < index) w.commitOne(encode(`v${w.runtime.appliedIndex}`));
    };
    return { w, taken, commitTo };
  };
  // snapshotEntries 20 and one entry kept behind a snapshot: due at 21 entries past the log's start.
  const apart = world(FIVE, true);
  apart.commitTo(60);
  assert.deepEqual(apart.taken, [29, 49], 'the first at 20 × 1.4 + 1, then every 20');
  const first = world(ABC, true);
  first.commitTo(60);
  assert.deepEqual(first.taken, [21, 41], 'slot 0: no stretch');
  const off = world(FIVE, undefined);
  off.commitTo(60);
  assert.deepEqual(off.taken, [21, 41], "off (the runtime's default): at the count");

  // An idle snapshot comes at the same index on every member: the next by count is stretched again.
  const idle = world(FIVE, true);
  idle.commitTo(36);
  assert.deepEqual(idle.taken, [29]);
  for (const id of ['c', '0', '1']) idle.w.ack(id, idle.w.core.lastIndex);
  for (let i = 0; i < 5; i++) {
    idle.w.runtime.tick();
    idle.w.runtime.pump();
    while (idle.w.syncs.length > 0) idle.w.completeSync();
  }
  assert.deepEqual(idle.taken, [29, 36], 'idle: 7 entries, a quarter of 20 or more');
  idle.commitTo(70);
  assert.deepEqual(idle.taken, [29, 36, 64], 'the next by count stretched again: 35 + 29');
});

test("RaftNode's and the server's snapshot defaults are the runtime's (one policy, however a node is started)", () => {
  for (const k of ['snapshotEntries', 'snapshotLogBytes', 'snapshotCatchUpEntries', 'snapshotLogPercent'] as const) {
    assert.equal(DEFAULT_NODE_OPTIONS[k], DEFAULT_RUNTIME_OPTIONS[k], k);
    assert.equal(DEFAULT_NODE_CONFIG[k], DEFAULT_RUNTIME_OPTIONS[k], k);
  }
  // The idle rule is in ms for a node and a server (ticks for the runtime, which knows no tick length).
  assert.equal(DEFAULT_NODE_CONFIG.snapshotIdleMs, DEFAULT_NODE_OPTIONS.snapshotIdleMs);
  // Members apart: on for a node and a server (off in a bare runtime, whose tests count exactly).
  assert.equal(DEFAULT_NODE_CONFIG.snapshotStagger, DEFAULT_NODE_OPTIONS.snapshotStagger);
  assert.equal(DEFAULT_NODE_OPTIONS.snapshotStagger, true);
});

/** The whole load beside the core at once: every slice, as a host would over its turns. */
function loadAll(runtime: Runtime<number>, snapshot: Snapshot | SnapshotSource): void {
  const steps = runtime.beginRestore(snapshot);
  while (!steps.step()) {
    // the next slice
  }
}

/**
 * A restarted follower `a` whose snapshot (index 5, ['s1'..'s5']) is still to be loaded beside
 * the running core (RuntimeOptions.restoring); its log holds 6..8 after it, all committed.
 */
function restartingWorld(
  hooks: RuntimeHooks<number> = {},
  sm: ListMachine = new ListMachine(),
  now: () => number = () => 0,
  through: { readonly windows: MemoryWindow[]; readonly readBack: boolean } | null = null,
): { runtime: Runtime<number>; sm: ListMachine; log: string[]; sent: Message[]; syncs: Done[]; snapshot: Snapshot; source: SnapshotSource } {
  const log: string[] = [];
  const sent: Message[] = [];
  const syncs: Done[] = [];
  const snapshot: Snapshot = { meta: { index: 5, term: 1, config: ABC }, data: encode(JSON.stringify(['s1', 's2', 's3', 's4', 's5'])) };
  const source = memorySource(snapshot, through?.windows ?? []);
  const entries: Entry[] = [6, 7, 8].map((index) => ({ index, term: 1, type: 'normal', data: encode(`e${index}`) }));
  const core = new Raft({ id: 'a', random: () => 0.5, preVote: false, checkQuorum: false, restarted: true }, { hardState: { currentTerm: 1, votedFor: null, commitIndex: 8 }, snapshot: snapshot.meta, entries, applied: 5 });
  const runtime = new Runtime<number>({
    core,
    storage: {
      append: (es) => log.push(`append ${es.map((e) => e.index).join(',')}`),
      setHardState: (hs) => log.push(`hardState t${hs.currentTerm}`),
      sync: (done) => (log.push('sync'), syncs.push(done)),
      installSnapshot: (s, done) => (log.push(`installSnapshot ${s.meta.index}`), done(null)),
      saveSnapshot: (s, done) => (log.push(`saveSnapshot ${s.meta.index}`), done(null)),
      compact: (index, done) => (log.push(`compact ${index}`), done(null)),
      ...(through?.readBack === true ? { readSnapshot: () => (log.push('readSnapshot'), snapshot) } : {}),
    },
    transport: { send: (m) => (sent.push(m), log.push(`send ${m.type} ${m.to}`)) },
    stateMachine: sm,
    clock: { now, setTimer: () => () => undefined },
    applied: 5,
    latestSnapshot: through === null ? snapshot : source,
    restoring: true,
    snapshotEntries: 1,
    snapshotCatchUpEntries: 0,
    snapshotLogPercent: 0,
    hooks: { ...hooks, applied: (e) => log.push(`apply ${e.index}`) },
  });
  runtime.pump();
  return { runtime, sm, log, sent, syncs, snapshot, source };
}

/** A window over bytes in memory that copies what it shows, as a file's would; counted, and closed by its owner. */
class MemoryWindow implements ByteWindow {
  buf = new Uint8Array(0);
  isClosed = false;
  constructor(private readonly bytes: Uint8Array) {}
  load(start: number, end: number): number {
    if (this.isClosed) throw new Error('closed');
    if (!(start >= 0 && start <= end && end <= this.bytes.length)) throw new RangeError(`[${start}, ${end})`);
    this.buf = this.bytes.slice(start, end);
    return 0;
  }
  close(): void {
    this.isClosed = true;
  }
}

/** `snapshot` as storage's openSnapshot() gives it: its bytes read through windows. */
function memorySource(snapshot: Snapshot, windows: MemoryWindow[]): SnapshotSource {
  return {
    meta: snapshot.meta,
    bytes: snapshot.data.length,
    window: (start, length) => {
      const window = new MemoryWindow(snapshot.data.subarray(start, start + length));
      windows.push(window);
      return window;
    },
  };
}

/** Restores through a source when given one (SlicedRestores.beginRestoreThrough), as KvStateMachine does. */
class ThroughMachine extends ListMachine {
  throughSources = 0;
  beginRestoreThrough(source: SnapshotBytesSource): RestoreInProgress {
    this.throughSources++;
    const window = source.window(0, source.bytes);
    return {
      step: () => {
        const at = window.load(0, source.bytes);
        this.restore(window.buf.subarray(at, at + source.bytes));
        window.close();
        return true;
      },
      abandon: () => window.close(),
    };
  }
}

test('a restart loads its state machine beside the core through the snapshot\'s file (a SnapshotSource): a machine that reads through it does, any other gets the bytes read whole; the runtime keeps no bytes', () => {
  for (const sm of [new ThroughMachine(), new ListMachine()]) {
    const windows: MemoryWindow[] = [];
    const restored: (Snapshot | SnapshotSource)[] = [];
    const w = restartingWorld({ restored: (s) => restored.push(s) }, sm, () => 0, { windows, readBack: true });
    loadAll(w.runtime, w.source);
    w.runtime.pump();
    while (w.syncs.length > 0) w.syncs.shift()!(null);
    assert.deepEqual(sm.items, ['s1', 's2', 's3', 's4', 's5', 'e6', 'e7', 'e8'], `${sm.constructor.name}: the snapshot, then the log after it`);
    assert.equal(restored.length, 1);
    assert.ok(!('data' in restored[0]!) && restored[0]!.bytes === w.snapshot.data.length, 'the restored hook is told of the source, without bytes');
    assert.ok(windows.length > 0 && windows.every((x) => x.isClosed), `${sm.constructor.name}: ${windows.length} windows read, all closed`);
    if (sm instanceof ThroughMachine) assert.equal(sm.throughSources, 1);
  }
  // Without a storage that reads the bytes back, the runtime could not send the snapshot: refused.
  assert.throws(() => restartingWorld({}, new ListMachine(), () => 0, { windows: [], readBack: false }), /needs a storage that reads them back/);
});

test('a restart loading its state machine beside the core: votes and appends are answered, nothing is applied, read or snapshotted until it is loaded', () => {
  const ready: number[] = [];
  const restored: number[] = [];
  const w = restartingWorld({ readReady: (id) => ready.push(id), restored: (s) => restored.push(s.meta.index) });
  assert.equal(w.runtime.isStateRestoring, true);
  assert.equal(w.runtime.core.isApplyHeld, true);
  assert.ok(!w.log.some((l) => l.startsWith('apply')), `no committed entry is applied onto a state machine not loaded yet: ${w.log.join(' | ')}`);
  // A candidate of term 2 asks for a vote (§5.2), and its leader then appends entry 9 (§5.3).
  w.runtime.receive({ type: 'RequestVote', from: 'b', to: 'a', term: 2, lastLogIndex: 8, lastLogTerm: 1, preVote: false, transfer: false });
  w.runtime.pump();
  w.syncs.shift()!(null);
  const vote = w.sent.find((m) => m.type === 'RequestVoteResponse');
  assert.ok(vote !== undefined && vote.type === 'RequestVoteResponse' && vote.voteGranted, `the vote is granted while loading: ${w.log.join(' | ')}`);
  w.runtime.receive({ type: 'AppendEntries', from: 'b', to: 'a', term: 2, prevLogIndex: 8, prevLogTerm: 1, entries: [{ index: 9, term: 2, type: 'normal', data: encode('e9') }], leaderCommit: 9, leaderStable: 0, seq: 1 });
  w.runtime.pump();
  w.syncs.shift()!(null);
  w.runtime.pump();
  const ack = w.sent.find((m) => m.type === 'AppendEntriesResponse');
  assert.ok(ack !== undefined && ack.type === 'AppendEntriesResponse' && ack.success && ack.matchIndex === 9, `the append is acknowledged while loading: ${w.log.join(' | ')}`);
  assert.equal(w.runtime.core.commitIndex, 9, 'and its commit learned');
  // A read at the snapshot's own index would be served from an empty state machine: it waits.
  w.runtime.awaitApplied(1, 5);
  assert.deepEqual(ready, [], 'no read is served before the load');
  // A snapshot asked for now has nothing new to cover: the loaded one is the newest.
  let snapshotAt = -1;
  w.runtime.takeSnapshot((err, index) => {
    assert.equal(err, null);
    snapshotAt = index;
  });
  assert.equal(snapshotAt, 5);
  assert.ok(!w.log.some((l) => l.startsWith('saveSnapshot')), 'no snapshot of a state machine not loaded');
  assert.deepEqual(w.sm.items, [], 'nothing applied yet');
  loadAll(w.runtime, w.snapshot);
  assert.deepEqual(restored, [5]);
  assert.deepEqual(ready, [1], 'the waiting read is served once the state is loaded');
  w.runtime.pump();
  while (w.syncs.length > 0) w.syncs.shift()!(null);
  assert.deepEqual(w.sm.items, ['s1', 's2', 's3', 's4', 's5', 'e6', 'e7', 'e8', 'e9'], 'the snapshot, then every committed entry in order');
  assert.equal(w.runtime.appliedIndex, 9);
  assert.equal(w.runtime.stats.restoredBeside, 1);
  assert.equal(w.runtime.beginRestore(w.snapshot).step(), true, 'nothing left to load');
  assert.equal(w.runtime.stats.restoredBeside, 1, 'a second load does nothing');
});

test("§7 a leader's snapshot installed while the state machine is still loading replaces the load: a late load does nothing", () => {
  const w = restartingWorld();
  w.runtime.receive({ type: 'InstallSnapshot', from: 'b', to: 'a', term: 2, snapshot: LEADER_SNAPSHOT, seq: 1 });
  w.runtime.pump();
  w.syncs.shift()!(null);
  assert.deepEqual(w.sm.items, ['from b']);
  assert.equal(w.runtime.isStateRestoring, false);
  assert.equal(w.runtime.core.isApplyHeld, false);
  assert.equal(w.runtime.stats.restoresSuperseded, 1);
  assert.equal(w.runtime.beginRestore(w.snapshot).step(), true, 'nothing left to load');
  assert.equal(w.runtime.stats.restoredBeside, 0, 'the older snapshot is not loaded over the leader\'s');
  assert.deepEqual(w.sm.items, ['from b']);
  assert.equal(w.runtime.appliedIndex, 20);
});

test('restoring needs the snapshot at the applied index, and beginRestore() refuses another', () => {
  const w = restartingWorld();
  assert.throws(() => w.runtime.beginRestore({ ...w.snapshot, meta: { ...w.snapshot.meta, index: 4 } }), /restoring from the snapshot at 4/);
  assert.equal(w.runtime.isStateRestoring, true, 'still waiting for the right one');
});

/** Restores in three steps, the state replaced by the last (as KvStateMachine.beginRestore does). */
class SlicedRestoreMachine extends ListMachine {
  abandoned = 0;
  beginRestore(data: Uint8Array): RestoreInProgress {
    let stepsLeft = 3;
    return {
      step: () => {
        if (--stepsLeft > 0) return false;
        this.restore(data);
        return true;
      },
      abandon: () => void this.abandoned++,
    };
  }
}

test('a load in slices beside the core (beginRestore): nothing applied between slices; a leader\'s snapshot mid-way abandons it; so does stop()', () => {
  const sm = new SlicedRestoreMachine();
  const w = restartingWorld({}, sm);
  const steps = w.runtime.beginRestore(w.snapshot);
  assert.throws(() => w.runtime.beginRestore(w.snapshot), /while a restore is under way/);
  assert.equal(steps.step(), false);
  w.runtime.pump();
  assert.deepEqual(sm.items, [], 'nothing applied between slices');
  assert.equal(steps.step(), false);
  assert.equal(steps.step(), true, 'loaded by the third');
  w.runtime.pump();
  assert.deepEqual(sm.items, ['s1', 's2', 's3', 's4', 's5', 'e6', 'e7', 'e8']);

  const sm2 = new SlicedRestoreMachine();
  const w2 = restartingWorld({}, sm2);
  const steps2 = w2.runtime.beginRestore(w2.snapshot);
  assert.equal(steps2.step(), false);
  w2.runtime.receive({ type: 'InstallSnapshot', from: 'b', to: 'a', term: 2, snapshot: LEADER_SNAPSHOT, seq: 1 });
  w2.runtime.pump();
  w2.syncs.shift()!(null);
  assert.equal(sm2.abandoned, 1, 'the load under way is dropped');
  assert.equal(steps2.step(), true, 'nothing left to load');
  assert.deepEqual(sm2.items, ['from b'], "the leader's state, not the older snapshot's");

  const sm3 = new SlicedRestoreMachine();
  const w3 = restartingWorld({}, sm3);
  const steps3 = w3.runtime.beginRestore(w3.snapshot);
  assert.equal(steps3.step(), false);
  w3.runtime.stop();
  assert.equal(sm3.abandoned, 1);
  assert.equal(steps3.step(), true);
  assert.deepEqual(sm3.items, []);
});

/** Restores at once but leaves a part for its background load (as KvStateMachine leaves its history): `slicesLeft` slices. */
class BackgroundListMachine extends ListMachine {
  slicesLeft = 0;
  slicesDone = 0;
  override restore(data: Uint8Array): void {
    super.restore(data);
    this.slicesLeft = 3;
  }
  get isLoadingInBackground(): boolean {
    return this.slicesLeft > 0;
  }
  loadInBackground(): boolean {
    if (this.slicesLeft > 0) {
      this.slicesLeft--;
      this.slicesDone++;
    }
    return this.slicesLeft === 0;
  }
}

test('a background load after a restart waits BACKGROUND_LOAD_DELAY_MS, and the replay, before its slices; a snapshot that comes due waits for it and takes it on', () => {
  let now = 0;
  const sm = new BackgroundListMachine();
  const w = restartingWorld({}, sm, () => now);
  loadAll(w.runtime, w.snapshot);
  assert.equal(sm.isLoadingInBackground, true);
  // The replay of 6..8 is due (commit 8, applied 5): the load begins later in any case.
  const first = w.runtime.loadInBackground();
  assert.ok(first !== null && first > 0, `the host is asked to wait, not to spin: ${first}`);
  assert.equal(sm.slicesDone, 0);
  now = BACKGROUND_LOAD_DELAY_MS - 1;
  assert.ok((w.runtime.loadInBackground() ?? 0) > 0, 'still waiting before the delay');
  assert.equal(sm.slicesDone, 0);
  // A snapshot comes due (snapshotEntries 1) as the replay is applied: it waits for the load.
  w.runtime.pump();
  while (w.syncs.length > 0) w.syncs.shift()!(null);
  w.runtime.pump();
  assert.deepEqual(sm.items, ['s1', 's2', 's3', 's4', 's5', 'e6', 'e7', 'e8'], 'the replay went on');
  assert.ok(!w.log.some((l) => l.startsWith('saveSnapshot')), `no snapshot while the load is pending: ${w.log.join(' | ')}`);
  assert.ok(sm.slicesDone >= 1, 'each pump that finds a snapshot waiting takes a slice of the load');
  // The host's turns, now that a snapshot waits: no delay, a slice each, to the end.
  while (w.runtime.loadInBackground() !== null) {
    // the next turn
  }
  assert.equal(sm.isLoadingInBackground, false);
  assert.ok(w.log.some((l) => l === 'saveSnapshot 8'), `the snapshot once loaded: ${w.log.join(' | ')}`);
  assert.equal(w.runtime.loadInBackground(), null, 'nothing left');
});

test('§5.4.3 an AppendEntries that contradicts committed entries is dropped and raised to the host (contradicted), a consistent one is not', () => {
  const alarms: Message[] = [];
  // Its log holds 6..8 after the snapshot, all committed (still loading: nothing compacts them).
  const w = restartingWorld({ contradicted: (m) => alarms.push(m) });
  // A "leader" of term 2 whose log holds 6@2 where a committed 6@1.
  const rewrite: Message = { type: 'AppendEntries', from: 'b', to: 'a', term: 2, prevLogIndex: 5, prevLogTerm: 1, entries: [{ index: 6, term: 2, type: 'normal', data: encode('x') }], leaderCommit: 6, leaderStable: 0, seq: 1 };
  w.runtime.receive(rewrite);
  assert.deepEqual(alarms, [rewrite]);
  assert.equal(w.runtime.core.droppedMessages['contradicts-committed'], 1);
  assert.equal(w.runtime.core.lastIndex, 8, 'nothing of it was taken');
  // The real leader of term 2 appends after the committed prefix: no alarm.
  w.runtime.receive({ type: 'AppendEntries', from: 'c', to: 'a', term: 2, prevLogIndex: 8, prevLogTerm: 1, entries: [{ index: 9, term: 2, type: 'normal', data: encode('e9') }], leaderCommit: 9, leaderStable: 0, seq: 1 });
  assert.equal(alarms.length, 1);
  assert.equal(w.runtime.core.lastIndex, 9);
});

/** A leader at `index` whose storage offers snapshot writers, with `sm`, that snapshots every 3 entries. */
function writingLeader(sm: ListMachine, hooks: RuntimeHooks<number> = {}): World {
  const w = new World(hooks, 3, false, sm, undefined, true, undefined, undefined, undefined, { writer: true });
  w.elect();
  return w;
}

/** Fires clock turns (the serializer's slices) until none is pending. */
function fireSlices(w: World): void {
  for (let slice = w.timers.findIndex((t) => t.ms === 0); slice >= 0; slice = w.timers.findIndex((t) => t.ms === 0)) w.timers.splice(slice, 1)[0]!.fire();
}

test('§7 a snapshot written straight into storage: the state machine writes into the storage\'s writer, the runtime saves the writer and keeps no bytes, and reads it back for InstallSnapshot', () => {
  const taken: { index: number; bytes: number; data: Uint8Array | null }[] = [];
  const w = writingLeader(new WritingListMachine(), { snapshotTaken: (s) => taken.push({ index: s.meta.index, bytes: s.bytes, data: s.data }) });
  w.proposeUntil(() => w.log.some((l) => l.startsWith('snapshotWriter')));
  fireSlices(w);
  const index = Number(w.log.find((l) => l.startsWith('saveWrittenSnapshot'))?.split(' ')[1]);
  assert.ok(index > 0, `saved through the writer: ${w.log.join(' | ')}`);
  assert.ok(!w.log.some((l) => l.startsWith('saveSnapshot') || l.startsWith('abandonWriter')), 'no bytes saved, the writer kept');
  assert.equal(taken.length, 1);
  assert.equal(taken[0]!.data, null, 'the runtime never held the bytes');
  assert.equal(taken[0]!.bytes, w.stored!.data.length);
  assert.equal(w.runtime.latestSnapshotMeta?.index, index);
  // Entries 1 and 2 are the founding configuration and the new leader's empty entry.
  assert.deepEqual(JSON.parse(new TextDecoder().decode(w.stored!.data)), w.sm.items.slice(0, index - 2), 'the writer holds the state at its index');
});

test('a state machine that returns its bytes although given a writer: the writer is given up and the bytes saved', () => {
  const w = writingLeader(new SlicedListMachine());
  w.proposeUntil(() => w.log.some((l) => l.startsWith('snapshotWriter')));
  fireSlices(w);
  const index = savedIndex(w);
  assert.ok(index > 0, w.log.join(' | '));
  assert.ok(w.log.includes(`abandonWriter ${index}`), 'the unused writer is abandoned');
  assert.ok(!w.log.some((l) => l.startsWith('saveWrittenSnapshot')));
});

test('a writer that finds the disk full: the snapshot is given up, its writer abandoned, the alarm raised, and it is tried again later', () => {
  const sm = new WritingListMachine();
  sm.failure = new NoSpaceError(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }), 'saving a snapshot');
  const w = writingLeader(sm);
  w.proposeUntil(() => w.log.some((l) => l.startsWith('snapshotWriter')));
  fireSlices(w);
  const first = Number(w.log.find((l) => l.startsWith('snapshotWriter'))!.split(' ')[1]);
  assert.ok(w.log.includes(`abandonWriter ${first}`), w.log.join(' | '));
  assert.equal(sm.abandoned, 1, 'the state machine\'s snapshot is abandoned too');
  assert.equal(w.runtime.isOutOfSpace, true, 'the NO_SPACE alarm');
  assert.equal(w.runtime.latestSnapshotMeta, null);
  // Space is back: the retry (a timer of its own) writes it.
  sm.failure = null;
  const retry = w.timers.findIndex((t) => t.ms > 0);
  assert.ok(retry >= 0, 'a retry is scheduled');
  w.timers.splice(retry, 1)[0]!.fire();
  w.runtime.pump();
  fireSlices(w);
  assert.ok(w.log.some((l) => l.startsWith('saveWrittenSnapshot')), w.log.join(' | '));
  assert.equal(w.runtime.isOutOfSpace, false);
});
