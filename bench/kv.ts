// node dist/bench/kv.js — the key-value state machine alone, no Raft: how many 256-byte puts per
// second apply() takes (entries pre-encoded, as the runtime hands them over), and how long
// snapshot() and restore() take for 1,000,000 keys. Prints each run and the median.
// Env: ENTRIES (per run, default 300000), RUNS (default 5), KEYS (snapshot sizes, a comma list,
// default 1000000).
// `--snapshot`: the snapshot part only (issue 11: what a snapshot costs the event loop): snapshot()
// at once, then in the runtime's slices (beginSnapshot: the longest slice is what holds the loop),
// and FileStorage.saveSnapshot() of it with the longest event-loop stall it caused (the rest of
// a save is I/O off the loop). A full GC runs before each timed run when node has --expose-gc.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KvStateMachine, encodeCommand } from '../src/kv/index.js';
import type { Entry } from '../src/raft/types.js';
import { SNAPSHOT_SLICE_BYTES } from '../src/node/runtime.js';
import { FileStorage } from '../src/storage/index.js';

const VALUE_BYTES = 256;
const ENTRIES = Number(process.env['ENTRIES'] ?? 300_000);
const RUNS = Number(process.env['RUNS'] ?? 5);
const KEY_COUNTS = (process.env['KEYS'] ?? '1000000').split(',').map(Number);
const isSnapshotOnly = process.argv.includes('--snapshot');
/** Revisions of history kept by the store being snapshotted: raftkv serve's default retention. */
const HISTORY_KEPT = 100_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A permutation of 0..n-1 spread over the key space, so inserts do not just append. */
function scatter(i: number, n: number): number {
  return (i * 2_654_435_761) % n;
}

function entries(n: number, keyOf: (i: number) => string, idempotent: boolean): Entry[] {
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  const out: Entry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const cmd = { type: 'put' as const, key: keyOf(i), value, time: 1_700_000_000_000 + i };
    const data = encodeCommand(idempotent ? { ...cmd, idempotencyKey: `client${i % 64}/${i}` } : cmd);
    out[i] = { index: i + 1, term: 1, type: 'normal', data };
  }
  return out;
}

function applyRate(label: string, batch: Entry[], prefill?: Entry[]): void {
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const sm = new KvStateMachine();
    let offset = 0;
    if (prefill !== undefined) {
      for (const e of prefill) sm.apply(e);
      offset = prefill.length;
    }
    const start = performance.now();
    for (const e of batch) sm.apply(offset === 0 ? e : { ...e, index: e.index + offset });
    const seconds = (performance.now() - start) / 1000;
    rates.push(batch.length / seconds);
  }
  const fmt = (r: number): string => `${Math.round(r).toLocaleString('en-US')}`;
  console.log(`${label}: ${rates.map(fmt).join(', ')} entries/s; median ${fmt(median(rates))} entries/s`);
}

function snapshotBench(KEYS: number): Uint8Array {
  const value = new Uint8Array(VALUE_BYTES).fill(0x62);
  const sm = new KvStateMachine();
  const buildStart = performance.now();
  let index = 0;
  for (let i = 0; i < KEYS; i++) {
    const key = `user/${String(scatter(i, KEYS)).padStart(8, '0')}`;
    sm.apply({ index: ++index, term: 1, type: 'normal', data: encodeCommand({ type: 'put', key, value, time: i, idempotencyKey: `c${i % 1000}/${i}` }) });
    // As a server compacts by default (--auto-compaction-retention 100000 revisions, in steps of
    // a tenth): the history a snapshot carries is the last 100,000 revisions, not every write.
    if (sm.revision - sm.compactRevision >= HISTORY_KEPT * 1.1) {
      sm.apply({ index: ++index, term: 1, type: 'normal', data: encodeCommand({ type: 'compact', revision: sm.revision - HISTORY_KEPT, time: i }) });
    }
  }
  console.log(`built ${sm.size.toLocaleString('en-US')} keys of ${VALUE_BYTES} B (${sm.idempotencyRecords.toLocaleString('en-US')} idempotency records) in ${((performance.now() - buildStart) / 1000).toFixed(1)} s`);
  const snapMs: number[] = [];
  const restoreMs: number[] = [];
  let bytes: Uint8Array = new Uint8Array(0);
  const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
  const sliceMs: number[] = [];
  const longestMs: number[] = [];
  let slices = 0;
  for (let run = 0; run < RUNS; run++) {
    gc();
    let t = performance.now();
    const inProgress = sm.beginSnapshot();
    let longest = performance.now() - t;
    let total = longest;
    let out: Uint8Array | null = null;
    for (slices = 0; out === null; slices++) {
      const s0 = performance.now();
      out = inProgress.step(SNAPSHOT_SLICE_BYTES);
      const ms = performance.now() - s0;
      longest = Math.max(longest, ms);
      total += ms;
    }
    sliceMs.push(total);
    longestMs.push(longest);
    gc();
    t = performance.now();
    bytes = sm.snapshot();
    snapMs.push(performance.now() - t);
    const replica = new KvStateMachine();
    t = performance.now();
    replica.restore(bytes);
    restoreMs.push(performance.now() - t);
    if (replica.size !== sm.size) throw new Error('restore lost keys');
  }
  const ms = (xs: number[]): string => `${xs.map((x) => x.toFixed(0)).join(', ')} ms; median ${median(xs).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)} ms`;
  console.log(`snapshot of ${KEYS.toLocaleString('en-US')} keys: ${(bytes.length / 1e6).toFixed(1)} MB; ${ms(snapMs)}`);
  console.log(`  in ${slices} slices of ${SNAPSHOT_SLICE_BYTES >> 20} MiB (beginSnapshot, then step): in all ${ms(sliceMs)}; longest slice ${ms(longestMs)}`);
  console.log(`restore  of ${KEYS.toLocaleString('en-US')} keys: ${ms(restoreMs)}`);
  return bytes;
}

/** FileStorage.saveSnapshot() of `data`: how long it takes, and the longest event-loop stall meanwhile. */
async function saveBench(data: Uint8Array): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-snap-'));
  try {
    const storage = await FileStorage.open(dir, { segmentBytes: 1 << 20 });
    const totals: number[] = [];
    const stalls: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      let last = performance.now();
      let longest = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const start = performance.now();
      last = start;
      await storage.saveSnapshot({ meta: { index: run + 1, term: 1, config: { voters: ['a'], votersOutgoing: [], learners: [] } }, data });
      totals.push(performance.now() - start);
      longest = Math.max(longest, performance.now() - last);
      clearInterval(ticker);
      stalls.push(longest);
    }
    await storage.close();
    const ms = (xs: number[]): string => `${xs.map((x) => x.toFixed(0)).join(', ')} ms; median ${median(xs).toFixed(0)} ms`;
    console.log(`saveSnapshot of ${(data.length / 1e6).toFixed(1)} MB: ${ms(totals)}; longest event-loop stall: ${ms(stalls)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pad = (i: number): string => String(i).padStart(8, '0');
if (!isSnapshotOnly) {
  console.log(`kv apply bench: ${ENTRIES.toLocaleString('en-US')} puts of ${VALUE_BYTES} B per run, ${RUNS} runs`);
  applyRate('new keys, scattered order', entries(ENTRIES, (i) => `user/${pad(scatter(i, ENTRIES))}`, false));
  applyRate('new keys, increasing order', entries(ENTRIES, (i) => `user/${pad(i)}`, false));
  const hot = entries(ENTRIES, (i) => `user/${pad(i % 10_000)}`, false);
  applyRate('overwrites of 10,000 keys', hot, hot.slice(0, 10_000));
  applyRate('new keys with idempotency keys', entries(ENTRIES, (i) => `user/${pad(scatter(i, ENTRIES))}`, true));
}
for (const keys of KEY_COUNTS) {
  const bytes = snapshotBench(keys);
  if (isSnapshotOnly) await saveBench(bytes);
}
