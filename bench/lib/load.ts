// A closed-loop load generator: `concurrency` clients, each sends one request, waits for the
// answer and sends the next. A warm-up runs first (connections opened, JIT and caches warm on
// both sides) and is not measured; then every request that completes inside the measured window
// counts toward throughput and has its latency recorded.
import { performance } from 'node:perf_hooks';
import { keepAliveAgent, send, type HttpRequest, type HttpTarget } from './http.js';
import { percentile } from './stats.js';

export interface LoadOptions {
  readonly target: HttpTarget;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The n-th request of the run; called on the hot path, so it should only pick a prebuilt one. */
  readonly nextRequest: (n: number) => HttpRequest;
  /** Whether an answer counts as a success. */
  readonly isOk: (status: number) => boolean;
  /** @default 10000 */
  readonly requestTimeoutMs?: number;
}

export interface LoadResult {
  readonly concurrency: number;
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  /** First error seen, to say why a run went wrong. */
  readonly firstError: string | null;
}

export async function runClosedLoop(o: LoadOptions): Promise<LoadResult> {
  const agent = keepAliveAgent(o.concurrency);
  const timeoutMs = o.requestTimeoutMs ?? 10_000;
  let latencies = new Float64Array(1 << 16);
  let ops = 0;
  let errors = 0;
  let firstError: string | null = null;
  let n = 0;
  const start = performance.now();
  const windowStart = start + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;

  const client = async (): Promise<void> => {
    for (;;) {
      const sentAt = performance.now();
      if (sentAt >= windowEnd) return;
      let ok = false;
      let why = '';
      try {
        const res = await send(agent, o.target, o.nextRequest(n++), timeoutMs);
        ok = o.isOk(res.status);
        if (!ok) why = `HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
      }
      const doneAt = performance.now();
      if (doneAt < windowStart || doneAt > windowEnd) continue;
      if (!ok) {
        errors++;
        firstError ??= why;
        // A refused or failing server must not turn the loop into a busy spin.
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (ops === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[ops++] = doneAt - sentAt;
    }
  };

  try {
    await Promise.all(Array.from({ length: o.concurrency }, () => client()));
  } finally {
    agent.destroy();
  }
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
  };
}
