// A fill: `count` items written once each, by `concurrency` closed-loop clients that take the
// next item as soon as their last one is acknowledged, with the rate reported after each tenth
// (or `steps`-th) of the items. Unlike runClosedLoop it ends when every item is written, not at a
// time. A failed write is counted and tried again (by the same client, after 10 ms), so the store
// holds every item at the end; an item that fails `maxAttempts` times stops the fill.
import { performance } from 'node:perf_hooks';

export interface FillOptions {
  readonly concurrency: number;
  readonly count: number;
  /** Writes item `n` (0 ≤ n < count) as client `client`; rejects with the reason it failed. */
  readonly write: (client: number, n: number) => Promise<unknown>;
  /** @default 10 */
  readonly steps?: number;
  /** Called as each step completes, in order. */
  readonly onStep?: (step: FillStep) => void;
  /** @default 5 */
  readonly maxAttempts?: number;
}

export interface FillStep {
  /** 1 … steps. */
  readonly step: number;
  /** Items acknowledged so far (the end of this step). */
  readonly done: number;
  /** Seconds from the start of the fill to the end of this step. */
  readonly elapsedSeconds: number;
  /** Items acknowledged in this step ÷ its seconds. */
  readonly opsPerSecond: number;
}

export interface FillResult {
  readonly count: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly steps: readonly FillStep[];
  /** Failed attempts (each one tried again). */
  readonly errors: number;
  readonly firstError: string | null;
  /** CPU time of this (the client's) process per item, in µs. */
  readonly clientCpuUsPerOp: number;
}

export async function runFill(o: FillOptions): Promise<FillResult> {
  const stepCount = Math.max(1, Math.min(o.steps ?? 10, o.count));
  const maxAttempts = o.maxAttempts ?? 5;
  // The step ends when this many items are acknowledged.
  const ends = Array.from({ length: stepCount }, (_, i) => Math.ceil(((i + 1) * o.count) / stepCount));
  const steps: FillStep[] = [];
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | null = null;
  // Set when an item gave up: the other clients stop too, rather than write on unobserved.
  let isAborted = false;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  let stepStart = start;

  const acknowledged = (): void => {
    done++;
    while (steps.length < stepCount && done >= ends[steps.length]!) {
      const now = performance.now();
      const before = steps.length === 0 ? 0 : ends[steps.length - 1]!;
      const step: FillStep = { step: steps.length + 1, done, elapsedSeconds: (now - start) / 1000, opsPerSecond: (done - before) / ((now - stepStart) / 1000) };
      stepStart = now;
      steps.push(step);
      o.onStep?.(step);
    }
  };

  const client = async (id: number): Promise<void> => {
    while (next < o.count && !isAborted) {
      const n = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await o.write(id, n);
          break;
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          errors++;
          firstError ??= why;
          if (attempt >= maxAttempts || isAborted) {
            isAborted = true;
            throw new Error(`item ${n} failed ${attempt} times; last: ${why}`);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      acknowledged();
    }
  };

  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.count) }, (_, id) => client(id)));
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { count: o.count, seconds, opsPerSecond: o.count / seconds, steps, errors, firstError, clientCpuUsPerOp: o.count > 0 ? (cpu.user + cpu.system) / o.count : NaN };
}
