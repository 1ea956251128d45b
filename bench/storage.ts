// Storage benchmark: group-commit append throughput of FileStorage, and recovery time and peak
// RSS for a 1,000,000-entry log. Run as `node dist/bench/storage.js`; prints medians. Recovery
// runs in a fresh child process so its peak RSS is the recovery's own.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Entry } from '../src/raft/types.js';
import { FileStorage } from '../src/storage/index.js';

const APPEND_RUNS = 5;
const APPEND_ENTRIES = 300_000;
const APPEND_ENTRY_BYTES = 256;
const PRODUCERS = 4;
const RECOVERY_ENTRIES = 1_000_000;
const RECOVERY_ENTRY_BYTES = 100;
const RECOVERY_RUNS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function makeRandom(seed: number): (bound: number) => number {
  let state = seed;
  return (bound) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % bound;
  };
}

/** Several producers append batches of 64–512 entries and each awaits sync(), as a runtime would. */
async function appendRun(seed: number): Promise<{ entriesPerSecond: number; syncsPerSecond: number; callsPerSync: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-'));
  try {
    const storage = await FileStorage.open(dir);
    const data = new Uint8Array(APPEND_ENTRY_BYTES).fill(7);
    const random = makeRandom(seed);
    let nextIndex = 1;
    let syncCalls = 0;
    const startSyncs = storage.fdatasyncCount;
    const start = process.hrtime.bigint();
    const producer = async (): Promise<void> => {
      while (nextIndex <= APPEND_ENTRIES) {
        const count = 64 + random(449);
        const batch: Entry[] = new Array(count);
        for (let i = 0; i < count; i++) batch[i] = { index: nextIndex + i, term: 1, type: 'normal', data };
        nextIndex += count;
        storage.append(batch);
        storage.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: nextIndex - 1 });
        syncCalls++;
        await storage.sync();
      }
    };
    await Promise.all(Array.from({ length: PRODUCERS }, producer));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const syncs = storage.fdatasyncCount - startSyncs;
    await storage.close();
    return { entriesPerSecond: (nextIndex - 1) / seconds, syncsPerSecond: syncs / seconds, callsPerSync: syncCalls / syncs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function writeRecoveryLog(dir: string): Promise<void> {
  const storage = await FileStorage.open(dir);
  const data = new Uint8Array(RECOVERY_ENTRY_BYTES).fill(3);
  for (let first = 1; first <= RECOVERY_ENTRIES; first += 500) {
    const batch: Entry[] = [];
    for (let i = first; i < first + 500 && i <= RECOVERY_ENTRIES; i++) batch.push({ index: i, term: 1, type: 'normal', data });
    storage.append(batch);
    await storage.sync();
  }
  storage.setHardState({ currentTerm: 1, votedFor: 'n1', commitIndex: RECOVERY_ENTRIES });
  await storage.close();
}

/** Child mode: open and load, then print elapsed ms and peak RSS in MB as JSON. */
async function recoverOnce(dir: string): Promise<void> {
  const start = process.hrtime.bigint();
  const storage = await FileStorage.open(dir);
  const state = await storage.load();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (state.entries.length !== RECOVERY_ENTRIES) throw new Error(`recovered ${state.entries.length} entries`);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ms, peakRssMb })}\n`);
  await storage.close();
}

async function main(): Promise<void> {
  if (process.argv[2] === '--recover') return recoverOnce(process.argv[3]!);
  console.log(`append: ${APPEND_ENTRIES} entries of ${APPEND_ENTRY_BYTES} B per run, batches of 64-512, ${PRODUCERS} concurrent producers each awaiting sync(), ${APPEND_RUNS} runs`);
  const runs = [];
  for (let run = 0; run < APPEND_RUNS; run++) runs.push(await appendRun(run + 1));
  const entries = median(runs.map((r) => r.entriesPerSecond));
  console.log(`  entries/s appended and synced (median): ${Math.round(entries)}  (${((entries * APPEND_ENTRY_BYTES) / 1e6).toFixed(1)} MB/s of entry data)`);
  console.log(`  fdatasyncs/s (median): ${Math.round(median(runs.map((r) => r.syncsPerSecond)))}`);
  console.log(`  sync() calls per fdatasync (median): ${median(runs.map((r) => r.callsPerSync)).toFixed(2)}`);

  const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-'));
  try {
    await writeRecoveryLog(dir);
    const self = fileURLToPath(import.meta.url);
    const results: { ms: number; peakRssMb: number }[] = [];
    for (let run = 0; run < RECOVERY_RUNS; run++) {
      const child = spawnSync(process.execPath, [self, '--recover', dir], { encoding: 'utf8', timeout: 60_000 });
      if (child.status !== 0) throw new Error(`recovery run failed: ${child.stderr}`);
      results.push(JSON.parse(child.stdout) as { ms: number; peakRssMb: number });
    }
    console.log(`recovery: ${RECOVERY_ENTRIES} entries of ${RECOVERY_ENTRY_BYTES} B, fresh process, page cache warm, ${RECOVERY_RUNS} runs`);
    console.log(`  open + load time (median): ${median(results.map((r) => r.ms)).toFixed(0)} ms`);
    console.log(`  peak RSS of the process (median): ${median(results.map((r) => r.peakRssMb)).toFixed(0)} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
