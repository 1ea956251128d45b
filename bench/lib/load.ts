// A closed-loop load generator: `concurrency` clients, each sends one operation, waits for the
// answer and sends the next. A warm-up runs first (connections opened, JIT and caches warm on
// both sides) and is not measured; then every operation that completes inside the measured
// window counts toward throughput and, when it succeeded, has its latency recorded. What an
// operation is (an HTTP PUT through the raftkv client, a gRPC Put to etcd) is the caller's.
import { performance } from 'node:perf_hooks';
import { percentile } from './stats.js';

export interface LoadOptions {
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /**
   * The n-th operation of the run (n counts over all clients), sent by client `client` (from 0).
   * Resolves with the name of the member that answered; rejects with the reason it failed.
   * Called on the hot path, so it should only pick prebuilt data.
   */
  readonly operation: (client: number, n: number) => Promise<string>;
  /** The member client `client` is aimed at: an answer from any other is counted as misrouted. */
  readonly expectedMember: (client: number) => string;
  /** Also count the successes of every `windowMs` of the measured window (LoadResult.windowOps). @default none */
  readonly windowMs?: number;
}

export interface LoadResult {
  readonly concurrency: number;
  /** Successful operations completed inside the measured window. */
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Failed operations completed inside the measured window. */
  readonly errors: number;
  /** First error seen, to say why a run went wrong. */
  readonly firstError: string | null;
  /** Successful operations, warm-up and tail included, answered by another member than aimed at. */
  readonly misrouted: number;
  /** Successful operations over the whole run, warm-up and tail included (what the servers saw). */
  readonly completed: number;
  /** CPU time of this (the client's) process per operation over the whole run, in µs. */
  readonly clientCpuUsPerOp: number;
  /**
   * With LoadOptions.windowMs: the successes counted in `ops`, per consecutive window of that
   * length from the start of the measured window (the last one may be shorter).
   */
  readonly windowOps?: readonly number[];
}

export async function runClosedLoop(o: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16);
  let ops = 0;
  let errors = 0;
  let misrouted = 0;
  let completed = 0;
  let attempted = 0;
  let firstError: string | null = null;
  let n = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const windowStart = start + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const windowMs = o.windowMs ?? 0;
  const windowOps = windowMs > 0 ? new Array<number>(Math.max(1, Math.ceil(o.durationMs / windowMs))).fill(0) : null;

  const client = async (id: number): Promise<void> => {
    const expected = o.expectedMember(id);
    for (;;) {
      const sentAt = performance.now();
      if (sentAt >= windowEnd) return;
      let ok = false;
      let why = '';
      try {
        const answeredBy = await o.operation(id, n++);
        ok = true;
        completed++;
        if (answeredBy !== expected) misrouted++;
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
      }
      attempted++;
      const doneAt = performance.now();
      if (doneAt >= windowStart && doneAt <= windowEnd) {
        if (ok) {
          if (ops === latencies.length) {
            const grown = new Float64Array(latencies.length * 2);
            grown.set(latencies);
            latencies = grown;
          }
          latencies[ops++] = doneAt - sentAt;
          if (windowOps !== null) windowOps[Math.min(windowOps.length - 1, Math.floor((doneAt - windowStart) / windowMs))]++;
        } else {
          errors++;
          firstError ??= why;
        }
      }
      // A refused or failing server must not turn the loop into a busy spin.
      if (!ok) await new Promise((r) => setTimeout(r, 10));
    }
  };

  await Promise.all(Array.from({ length: o.concurrency }, (_, id) => client(id)));
  const cpu = process.cpuUsage(cpuBefore);
  const measured = latencies.subarray(0, ops).sort();
  const seconds = o.durationMs / 1000;
  return {
    concurrency: o.concurrency,
    ops,
    seconds,
    opsPerSecond: ops / seconds,
    p50Ms: percentile(measured, 0.5),
    p99Ms: percentile(measured, 0.99),
    maxMs: ops > 0 ? measured[ops - 1]! : NaN,
    errors,
    firstError,
    misrouted,
    completed,
    clientCpuUsPerOp: attempted > 0 ? (cpu.user + cpu.system) / attempted : NaN,
    ...(windowOps !== null ? { windowOps } : {}),
  };
}
