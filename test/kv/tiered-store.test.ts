// The store's two tiers (issue 11, memory and restart at 1M keys): a snapshot's records stay in
// its bytes as the base (src/kv/base-table.ts) and only what changed since lives as objects. The
// tiers must be invisible: a store that snapshots (whole or in slices, becoming tiered each time)
// and restores from its own snapshots answers every command and every read exactly as a store
// that never does, and writes byte-identical snapshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvStateMachine, KvError, compareKeys, type Command } from '../../src/kv/index.js';
import { FileWindow } from '../../src/storage/file-window.js';
import type { KvSnapshotInProgress } from '../../src/kv/state-machine.js';
import { BaseTable, keyBytes, scanBaseRecords } from '../../src/kv/base-table.js';
import type { ByteWindow, Entry, SnapshotWriter } from '../../src/raft/types.js';
import { commandArb, entryOf, bytes } from './helpers.js';

type Step =
  | { readonly kind: 'apply'; readonly cmd: Command }
  | { readonly kind: 'snapshot' }
  | { readonly kind: 'begin'; readonly sliceBytes: number }
  | { readonly kind: 'slice' }
  | { readonly kind: 'restart' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: commandArb.map((cmd) => ({ kind: 'apply' as const, cmd })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 48 }).map((sliceBytes) => ({ kind: 'begin' as const, sliceBytes })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'slice' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

const PREFIXES = ['', 'a', 'b/', 'é', 'z', '😀'];

/** Everything a reader can see of the store, at now and at each past revision still readable. */
function view(sm: KvStateMachine): unknown {
  const out: Record<string, unknown> = { size: sm.size, sizeBytes: sm.sizeBytes, revision: sm.revision, compact: sm.compactRevision, leases: sm.leaseIds().map((id) => sm.lease(id)) };
  for (let rev = Math.max(1, sm.compactRevision); rev <= sm.revision + 1; rev++) {
    const at: Record<string, unknown> = {};
    for (const p of PREFIXES) at[`list ${p}`] = attempt(() => sm.list(p, 1000, Number.POSITIVE_INFINITY, rev));
    for (const k of ['a', 'ab', 'abc', 'b', 'b/1', 'b/2', 'é', '😀', '\uffff', 'z', 'missing']) at[`get ${k}`] = attempt(() => sm.get(k, rev));
    const scanned: string[] = [];
    at['scan b..z'] = attempt(() => sm.scan('b', 'z', (rec) => scanned.push(`${rec.key}@${rec.modRevision}`) < 1000, rev));
    at['scanned'] = scanned;
    out[`rev ${rev}`] = at;
  }
  out['list limited'] = sm.list('', 2, 200);
  return out;
}

function attempt<T>(f: () => T): T | string {
  try {
    return f();
  } catch (err) {
    if (err instanceof KvError) return `${err.code}: ${err.message}`;
    throw err;
  }
}

/**
 * A SnapshotWriter into a file (FileStorage's writes in the background: test/storage/
 * snapshot-writer.test.ts), in small chunks. Chunks count as queued until the test drains the
 * sink between steps, as a disk would write them meanwhile: with three queued it is behind, and
 * the store must wait (return from its step) rather than hand over more.
 */
class FileSink implements SnapshotWriter {
  readonly meta = { index: 0, term: 0, config: { voters: [], votersOutgoing: [], learners: [] } };
  readonly chunkBytes: number = 48;
  bytes = -1;
  private fd: number | null = null;
  private at = 0;
  private spares: Uint8Array[] = [];
  /** Chunks handed over since the last drain(). */
  private queued = 0;

  constructor(
    readonly path: string,
    private readonly windows: ByteWindow[],
    chunkBytes = 48,
  ) {
    this.chunkBytes = chunkBytes;
  }

  /** Chunks handed over since the last drain(). */
  get queuedChunks(): number {
    return this.queued;
  }

  get isBehind(): boolean {
    return this.queued >= 3;
  }

  /** The disk wrote what was queued. */
  drain(): void {
    this.queued = 0;
  }

  begin(bytes: number): void {
    assert.equal(this.bytes, -1, 'begin() once');
    this.bytes = bytes;
    this.fd = openSync(this.path, 'w');
  }

  write(buf: Uint8Array, length: number): void {
    assert.ok(this.at + length <= this.bytes, 'no more than announced');
    // One item may spill a few times (a record's parts each larger than what is left of 48
    // bytes), then the store must wait: never many more than three queued.
    assert.ok(++this.queued <= 12, `${this.queued} chunks handed to a sink that is behind`);
    writeSync(this.fd!, buf, 0, length, this.at);
    this.at += length;
    // Scribbled over before it is handed back: the store must not read what it gave away.
    buf.fill(0xee);
    this.spares.push(buf);
  }

  spare(): Uint8Array | null {
    return this.spares.pop() ?? null;
  }

  isWritten(): boolean {
    return this.bytes >= 0 && this.at === this.bytes;
  }

  window(start: number, length: number): ByteWindow {
    const window = new FileWindow(this.path, start, length);
    this.windows.push(window);
    return window;
  }

  abandon(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  contents(): Uint8Array {
    this.abandon();
    return new Uint8Array(readFileSync(this.path));
  }
}

/** How the property's store is snapshotted: `moveToFile` as the server does once a snapshot is saved (readBaseThrough); `sink` to write each one into. */
interface PropertyMode {
  readonly moveToFile?: (sm: KvStateMachine, snapshot: Uint8Array) => void;
  readonly sink?: () => FileSink;
  /** How a restart restores (restore() from the bytes unless given). */
  readonly restore?: (sm: KvStateMachine, snapshot: Uint8Array) => void;
}

/** The property below, in `mode`. */
function tieredStoreProperty(mode: PropertyMode, numRuns: number): void {
  const { moveToFile, sink, restore } = mode;
  const begin = (sm: KvStateMachine): { snap: KvSnapshotInProgress<Uint8Array | 'written'>; sink: FileSink | null } => {
    const into = sink?.() ?? null;
    return { snap: sm.beginSnapshot(null, into), sink: into };
  };
  const bytesOf = (out: Uint8Array | 'written', into: FileSink | null): Uint8Array => (out === 'written' ? into!.contents() : out);
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 5, maxLength: 80, size: 'max' }), (steps) => {
      let tiered = new KvStateMachine({ idempotencyMaxRecords: 3 });
      const plain = new KvStateMachine({ idempotencyMaxRecords: 3 });
      let index = 0;
      let inProgress: { snap: KvSnapshotInProgress<Uint8Array | 'written'>; sink: FileSink | null; sliceBytes: number } | null = null;
      let latest: Uint8Array | null = null;
      const log: Entry[] = [];
      for (const step of steps) {
        switch (step.kind) {
          case 'apply': {
            const entry = entryOf(++index, step.cmd);
            log.push(entry);
            assert.deepEqual(tiered.apply(entry), plain.apply(entry), `command ${index} answers the same`);
            break;
          }
          case 'snapshot':
            if (inProgress === null) {
              const whole = begin(tiered);
              let out: Uint8Array | 'written' | null = null;
              // A sink behind the disk makes even a whole step pause.
              for (let turn = 0; out === null; turn++) {
                assert.ok(turn < 100_000, 'a snapshot completes');
                whole.sink?.drain();
                out = whole.snap.step(Number.POSITIVE_INFINITY);
              }
              assert.equal(out === 'written', sink !== undefined, 'written into the sink when there is one');
              latest = bytesOf(out, whole.sink);
              moveToFile?.(tiered, latest);
            }
            break;
          case 'begin':
            if (inProgress === null) inProgress = { ...begin(tiered), sliceBytes: step.sliceBytes };
            break;
          case 'slice':
            if (inProgress !== null) {
              inProgress.sink?.drain();
              const out = inProgress.snap.step(inProgress.sliceBytes);
              if (out !== null) {
                latest = bytesOf(out, inProgress.sink);
                inProgress = null;
                moveToFile?.(tiered, latest);
              }
            }
            break;
          case 'restart': {
            if (latest === null) break;
            // A restart: a new store from the newest snapshot, then the log after it again.
            const restarted = new KvStateMachine({ idempotencyMaxRecords: 3 });
            if (restore === undefined) restarted.restore(latest);
            else restore(restarted, latest);
            const again = restarted.snapshot();
            assert.deepEqual(Buffer.from(again), Buffer.from(latest), 'a restored store writes the snapshot it came from');
            moveToFile?.(restarted, again);
            for (const entry of log.slice(restarted.appliedIndex)) restarted.apply(entry);
            tiered = restarted;
            inProgress = null;
            break;
          }
        }
      }
      // A snapshot still being written finishes first (a sink behind makes a step pause).
      for (let turn = 0; inProgress !== null && (inProgress.sink?.drain(), inProgress.snap.step(Number.POSITIVE_INFINITY)) === null; turn++) assert.ok(turn < 100_000, 'a snapshot completes');
      assert.deepEqual(view(tiered), view(plain));
      assert.deepEqual(Buffer.from(tiered.snapshot()), Buffer.from(plain.snapshot()), 'byte-identical snapshots');
      // And once more after both became tiered by that snapshot.
      assert.deepEqual(view(tiered), view(plain));
    }),
    { numRuns },
  );
}

test('property: a store that snapshots, in slices too, and restarts from its snapshots answers exactly as one that never does', () => {
  tieredStoreProperty({}, 400);
});

test('property: the same with the base read from a file through a window (src/storage/file-window.ts) after each snapshot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-base-window-'));
  const windows: FileWindow[] = [];
  try {
    // Each snapshot is written to a file of its own, and the store reads its base back from it.
    const moveToFile = (sm: KvStateMachine, snapshot: Uint8Array): void => {
      const path = join(dir, `snapshot-${windows.length}`);
      writeFileSync(path, snapshot);
      sm.readBaseThrough(snapshot, (offset, length) => {
        const window = new FileWindow(path, offset, length);
        windows.push(window);
        return window;
      });
    };
    tieredStoreProperty({ moveToFile }, 200);
    assert.ok(windows.length > 50, `${windows.length} bases were read through windows`);
    assert.ok(windows.some((w) => w.reads > 0), 'bases were read from their files');
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('property: the same with each snapshot written straight into a file (a SnapshotWriter) and its base read back from there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-base-sink-'));
  const windows: ByteWindow[] = [];
  let sinks = 0;
  try {
    tieredStoreProperty({ sink: () => new FileSink(join(dir, `snapshot-${sinks++}`), windows) }, 200);
    assert.ok(sinks > 100, `${sinks} snapshots were written into sinks`);
    assert.ok(windows.length > 50, `${windows.length} bases were read back through windows`);
    assert.ok(windows.some((w) => (w as FileWindow).reads > 0), 'bases were read from their files');
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Restores `sm` from the snapshot file `path` (`bytes` long) through windows, as a restart does
 * (KvStateMachine.beginRestoreThrough), reading `readBytes` at a time in slices of `slice`.
 */
function restoreThroughFile(sm: KvStateMachine, path: string, bytes: number, windows: FileWindow[], slice: number, readBytes: number): void {
  const task = sm.beginRestoreThrough(
    {
      bytes,
      window: (start, length) => {
        const window = new FileWindow(path, start, length);
        windows.push(window);
        return window;
      },
    },
    slice,
    readBytes,
  );
  for (let turn = 0; !task.step(); turn++) assert.ok(turn < 1_000_000, 'a restore completes');
}

test('property: the same with every restart restored through its snapshot file, a few bytes read at a time (beginRestoreThrough)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-restore-window-'));
  const windows: FileWindow[] = [];
  let restores = 0;
  let windowed = 0;
  try {
    const restore = (sm: KvStateMachine, snapshot: Uint8Array): void => {
      const path = join(dir, `snapshot-${restores}`);
      writeFileSync(path, snapshot);
      // Reads of 1 to 40 bytes: records straddle them, many larger than one read.
      restoreThroughFile(sm, path, snapshot.length, windows, 1 + (restores % 7), 1 + (restores % 40));
      restores++;
      if (sm.baseTier.windowed) windowed++;
    };
    tieredStoreProperty({ restore }, 200);
    assert.ok(windowed > 30, `${windowed} of ${restores} restores kept their base in the file`);
    assert.ok(windows.filter((w) => !w.isClosed).length < windows.length, 'windows of replaced bases are closed');
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restore through the file refuses a damaged snapshot exactly when a restore of its bytes does, and otherwise reads the same state', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-restore-damage-'));
  const windows: FileWindow[] = [];
  try {
    const source = new KvStateMachine();
    let index = 0;
    for (let i = 0; i < 60; i++) source.apply(entryOf(++index, { type: 'put', key: `k/${String(i).padStart(3, '0')}${'x'.repeat(i % 5)}`, value: bytes('v'.repeat(i * 7)), time: index }));
    for (let i = 0; i < 10; i++) source.apply(entryOf(++index, { type: 'delete', key: `k/${String(i * 3).padStart(3, '0')}`, time: index }));
    const good = source.snapshot();
    const rand = fc.sample(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.boolean(), fc.integer({ min: 1, max: 50 })), { numRuns: 300, seed: 11 });
    let refused = 0;
    for (const [at, xor, truncate, readBytes] of rand) {
      const damaged = truncate ? good.slice(0, at) : Uint8Array.from(good, (b, i) => (i === at ? b ^ xor : b));
      const path = join(dir, 'snapshot');
      writeFileSync(path, damaged);
      const inMemory = new KvStateMachine();
      const through = new KvStateMachine();
      const a = attempt(() => (inMemory.restore(damaged), view(inMemory)));
      const opened = windows.length;
      const b = attempt(() => (restoreThroughFile(through, path, damaged.length, windows, 5, readBytes), view(through)));
      if (typeof a === 'string') {
        refused++;
        assert.ok(windows.slice(opened).every((w) => w.isClosed), 'a refused restore leaves no window open');
        assert.match(String(b), /^BAD_SNAPSHOT/, `damage at ${at} (${truncate ? 'cut' : `xor ${xor}`}): refused from memory (${a}), and through the file`);
      } else {
        assert.deepEqual(b, a, `damage at ${at} (${truncate ? 'cut' : `xor ${xor}`}), read ${readBytes} at a time: the same state`);
      }
    }
    assert.ok(refused > 60, `${refused} damaged snapshots refused`);
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a base restored through its file answers lookups of keys it does not hold from its key filter, without a read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-restore-filter-'));
  const windows: FileWindow[] = [];
  try {
    const source = new KvStateMachine();
    for (let i = 1; i <= 20_000; i++) source.apply(entryOf(i, { type: 'put', key: `key/${i}`, value: bytes('v'.repeat(200)), time: i }));
    const snap = source.snapshot();
    const path = join(dir, 'snapshot');
    writeFileSync(path, snap);
    const sm = new KvStateMachine();
    restoreThroughFile(sm, path, snap.length, windows, 1000, 64 << 10);
    assert.deepEqual(sm.baseTier, { records: 20_000, windowed: true });
    const base = windows.find((w) => !w.isClosed)!;
    const before = base.reads;
    // New keys, each between two the base holds (so each lookup would read another block): a
    // write that must learn the base does not hold its key.
    let index = 20_000;
    for (let i = 0; i < 2000; i++) sm.apply(entryOf(++index, { type: 'put', key: `key/${((i * 7919) % 2000) * 10 + 1}x`, value: bytes('n'), time: index }));
    const newReads = base.reads - before;
    assert.ok(newReads < 100, `${newReads} reads for 2,000 writes of new keys (the filter lets ~1 % through)`);
    // Keys it holds are all found (no false negatives), each by a read.
    for (let i = 1; i <= 20_000; i += 97) assert.equal(sm.get(`key/${i}`)?.version, 1, `key/${i} found`);
    assert.ok(base.reads > before + newReads, 'held keys are read from the file');
    assert.equal(sm.size, 22_000);
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the base a snapshot written into a file leaves has its fence and key filter from the encoder: every key found, new keys read nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-encoder-keys-'));
  const windows: ByteWindow[] = [];
  try {
    const sm = new KvStateMachine();
    const plain = new KvStateMachine();
    let index = 0;
    const apply = (cmd: Command): void => {
      const entry = entryOf(++index, cmd);
      assert.deepEqual(sm.apply(entry), plain.apply(entry));
    };
    const snapshot = (n: number): void => {
      const sink = new FileSink(join(dir, `snapshot-${n}`), windows, 4096);
      const snap = sm.beginSnapshot(null, sink);
      for (let out: Uint8Array | 'written' | null = null; out === null; sink.drain()) out = snap.step(Number.POSITIVE_INFINITY);
    };
    for (let i = 0; i < 3000; i++) apply({ type: 'put', key: `k/${String(i).padStart(5, '0')}`, value: bytes(`v${i}`), time: index });
    // History compacted: the overlay lets go of what the base holds, and the next snapshot copies
    // the base's records as they are (the encoder's path for records that did not change).
    apply({ type: 'compact', revision: sm.revision, time: index });
    snapshot(1);
    for (let i = 0; i < 3000; i += 7) apply({ type: 'put', key: `k/${String(i).padStart(5, '0')}`, value: bytes(`w${i}`), time: index });
    for (let i = 0; i < 300; i++) apply({ type: 'put', key: `k/${String(i * 10).padStart(5, '0')}n`, value: bytes('new'), time: index });
    apply({ type: 'compact', revision: sm.revision, time: index });
    snapshot(2);
    assert.deepEqual(sm.baseTier, { records: 3300, windowed: true });
    const base = windows[windows.length - 1] as FileWindow;
    // Every key the base holds is found (no key left out of its fence or filter).
    for (let i = 0; i < 3000; i++) {
      const key = `k/${String(i).padStart(5, '0')}`;
      assert.deepEqual(sm.get(key), plain.get(key), key);
    }
    // Keys it does not hold, each between two it does: answered by the filter.
    const before = base.reads;
    for (let i = 0; i < 1000; i++) assert.equal(sm.get(`k/${String(i * 3).padStart(5, '0')}x`), null);
    assert.ok(base.reads - before < 50, `${base.reads - before} reads for 1,000 lookups of keys the base does not hold`);
    assert.deepEqual(view(sm), view(plain));
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store writing its snapshot into a sink that is behind the disk stops between records and goes on once it has caught up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-base-behind-'));
  const windows: ByteWindow[] = [];
  try {
    const sm = new KvStateMachine();
    for (let i = 1; i <= 1000; i++) sm.apply(entryOf(i, { type: 'put', key: `key/${String(i).padStart(4, '0')}`, value: bytes('v'.repeat(100)), time: i }));
    const expected = sm.snapshot();
    const sink = new FileSink(join(dir, 'snapshot'), windows, 256);
    const snap = sm.beginSnapshot(null, sink);
    let steps = 0;
    let out: Uint8Array | 'written' | null = null;
    while (out === null) {
      out = snap.step(Number.POSITIVE_INFINITY);
      steps++;
      // Three chunks queued make it behind; a record (~120 bytes) spills at most once more.
      assert.ok(sink.queuedChunks <= 4, `${sink.queuedChunks} chunks handed over in one step`);
      sink.drain();
    }
    assert.equal(out, 'written');
    assert.ok(steps > 100, `a whole step stopped ${steps - 1} times for the disk`);
    assert.deepEqual(sink.contents(), expected, 'the bytes snapshot() writes');
  } finally {
    for (const w of windows) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restored store holds its records in the snapshot bytes and reads, writes and deletes through both tiers', () => {
  const source = new KvStateMachine();
  const keys: string[] = [];
  for (let i = 1; i <= 500; i++) {
    const key = `k/${String(i).padStart(4, '0')}`;
    keys.push(key);
    source.apply(entryOf(i, { type: 'put', key, value: bytes(`v${i}`), time: i }));
  }
  const snap = source.snapshot();
  const sm = new KvStateMachine();
  sm.restore(snap);
  assert.equal(sm.size, 500);
  assert.equal(new TextDecoder().decode(sm.get('k/0250')!.value), 'v250');
  let index = 500;
  sm.apply(entryOf(++index, { type: 'delete', key: 'k/0001', time: index }));
  sm.apply(entryOf(++index, { type: 'put', key: 'k/0002', value: bytes('new'), time: index }));
  sm.apply(entryOf(++index, { type: 'put', key: 'k/0000', value: bytes('first'), time: index }));
  assert.equal(sm.size, 500);
  assert.equal(sm.get('k/0001'), null);
  assert.equal(sm.get('k/0002')!.version, 2);
  const listed = sm.list('k/', 4).items.map((r) => r.key);
  assert.deepEqual(listed, ['k/0000', 'k/0002', 'k/0003', 'k/0004']);
  // Deleting a base key and writing it again: a new key (version 1, a new create revision).
  sm.apply(entryOf(++index, { type: 'put', key: 'k/0001', value: bytes('again'), time: index }));
  assert.equal(sm.get('k/0001')!.version, 1);
  assert.equal(sm.get('k/0001')!.createRevision, sm.revision);
});

test('the base searches through its fence of every 32nd key exactly as a search of every key would', () => {
  // Keys of one to 300 characters (lengths from 128 take two bytes of varint), ASCII and not,
  // many sharing long prefixes, so that fence and block comparisons run past a first difference.
  const rand = fc.sample(
    fc.oneof(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }),
      fc.integer({ min: 0, max: 300 }).map((n) => `shared/prefix/${'x'.repeat(n % 150)}${n}`),
      fc.integer({ min: 0, max: 99_999 }).map((n) => `user/${String(n).padStart(8, '0')}`),
    ),
    { numRuns: 3000, seed: 11 },
  );
  // A key is well-formed UTF-16: no surrogate left once the pairs are taken out.
  const keys = [...new Set(rand)].filter((k) => !/[\ud800-\udfff]/.test(k.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')));
  const sm = new KvStateMachine();
  keys.forEach((key, i) => sm.apply(entryOf(i + 1, { type: 'put', key, value: bytes('v'), time: 1 })));
  const restored = new KvStateMachine();
  restored.restore(sm.snapshot());
  const sorted = [...keys].sort(compareKeys);
  assert.ok(sorted.length > 1000, `${sorted.length} distinct keys`);
  const probes = [...sorted, ...fc.sample(fc.string({ maxLength: 14 }), { numRuns: 2000, seed: 12 }), '', '\uffff\uffff', sorted[0]!.slice(0, -1), `${sorted.at(-1)!}\u0000`];
  const table = (restored as unknown as { base: BaseTable }).base;
  assert.equal(table.count, sorted.length, 'the restored store holds its keys in its base');
  for (const probe of probes) {
    let want = 0;
    while (want < sorted.length && compareKeys(sorted[want]!, probe) < 0) want++;
    assert.equal(table.lowerBound(keyBytes(probe)), want, `lowerBound(${JSON.stringify(probe.slice(0, 40))})`);
    assert.equal(table.indexOf(keyBytes(probe)), sorted[want] === probe ? want : -1);
  }
});

test('the base: binary search in byte order, and a scan that refuses what a decoder would', () => {
  const sm = new KvStateMachine();
  const keys = ['a', 'b', 'é', '\uffff', '😀'];
  keys.forEach((key, i) => sm.apply(entryOf(i + 1, { type: 'put', key, value: bytes(key), time: 1 })));
  const snap = sm.snapshot();
  // The records begin after "RKVS", the version, the applied index, the clock, the revision, the compact revision and the count.
  const start = 4 + 1 + 1 + 8 + 1 + 1 + 1;
  const { table } = scanBaseRecords(snap, start, keys.length, sm.revision);
  assert.equal(table.count, 5);
  keys.forEach((key, i) => assert.equal(table.indexOf(keyBytes(key)), i, `${key} is found where code point order puts it`));
  assert.equal(table.indexOf(keyBytes('c')), -1);
  assert.equal(table.lowerBound(keyBytes('c')), 2);
  assert.equal(table.keyAt(4), '😀');
  assert.equal(BaseTable.EMPTY.indexOf(keyBytes('a')), -1);
  // Keys out of order: swap the first two records' one-byte keys.
  const swapped = Uint8Array.from(snap);
  const at = start + 1;
  [swapped[at], swapped[at + 1 + 8 + 1]] = [swapped[at + 1 + 8 + 1]!, swapped[at]!];
  assert.throws(() => scanBaseRecords(swapped, start, keys.length, sm.revision), /strictly increasing|beyond/);
  // A count the bytes cannot hold, and a revision above the store's.
  assert.throws(() => scanBaseRecords(snap, start, 1_000_000, sm.revision), /key count 1000000 exceeds the data/);
  assert.throws(() => scanBaseRecords(snap, start, keys.length, 1), /revisions beyond the store's/);
  // Invalid UTF-8 in a key.
  const badKey = Uint8Array.from(snap);
  badKey[start + 1] = 0xff;
  assert.throws(() => scanBaseRecords(badKey, start, keys.length, sm.revision), /not valid UTF-8/);
});
