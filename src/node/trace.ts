// Off by default: with RAFTKV_TRACE_DIR set, records a wall-clock timestamp (µs resolution,
// comparable across processes on one machine) at named points along a write's path, keyed by
// log index, and appends them to DIR/trace-<pid>.txt every quarter second and at exit, so a
// process killed with SIGKILL (a benchmark's restart) leaves all but its last moments. For
// measuring where one request's latency goes (docs/benchmarks.md); costs one branch per point
// when off.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Message } from '../raft/index.js';

const dir = process.env['RAFTKV_TRACE_DIR'];
export const isTracing = dir !== undefined && dir !== '';
const FLUSH_MS = 250;
const MAX_LINES = 2_000_000;
let lines: string[] = [];
let written = 0;

function flush(): void {
  if (lines.length === 0) return;
  appendFileSync(join(dir!, `trace-${process.pid}.txt`), lines.join('\n') + '\n');
  written += lines.length;
  lines = [];
}

if (isTracing) {
  setInterval(flush, FLUSH_MS).unref();
  process.on('exit', flush);
}

/** Records that `point` was reached for log index `index`. */
export function trace(point: string, index: number): void {
  if (!isTracing || written + lines.length > MAX_LINES) return;
  lines.push(`${(performance.timeOrigin + performance.now()).toFixed(3)} ${point} ${index}`);
}

/** A message on the critical path of a write: entries, commit index, acknowledgements. */
export function traceMessage(dir: string, m: Message): void {
  if (m.type === 'AppendEntries') {
    if (m.entries.length > 0) trace(`${dir}-ae`, m.entries[m.entries.length - 1]!.index);
    else trace(`${dir}-commit`, m.leaderCommit);
    // The leader's durable index, announced or carried: what a follower's own count waits for.
    if (m.leaderStable !== undefined) trace(`${dir}-stable`, m.leaderStable);
  } else if (m.type === 'AppendEntriesResponse') {
    trace(`${dir}-aer`, m.matchIndex);
  }
}
