// Spreads seeds over worker threads (each run is single-threaded and independent), handing out
// one seed at a time so a slow seed never holds up a whole batch. Results come back in seed order.
import { Worker } from 'node:worker_threads';
import type { SimOptions } from './options.js';
import type { SimResult } from './result.js';
import { runSeed } from './simulation.js';

export type PoolOptions = Omit<SimOptions, 'seed' | 'trace'>;

/** Runs `seeds` in order on this thread. */
export function runSeedsInline(seeds: readonly number[], options: PoolOptions, onResult?: (r: SimResult) => void): SimResult[] {
  const out: SimResult[] = [];
  for (const seed of seeds) {
    const r = runSeed({ ...options, seed });
    onResult?.(r);
    out.push(r);
  }
  return out;
}

/** Runs `seeds` on `workers` threads (inline when workers ≤ 1). */
export async function runSeeds(
  seeds: readonly number[],
  options: PoolOptions,
  workers: number,
  onResult?: (r: SimResult) => void,
): Promise<SimResult[]> {
  if (workers <= 1 || seeds.length <= 1) return runSeedsInline(seeds, options, onResult);
  const results = new Map<number, SimResult>();
  let next = 0;
  const count = Math.min(workers, seeds.length);
  const threads: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      for (let i = 0; i < count; i++) {
        const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: options });
        threads.push(w);
        const feed = (): void => {
          if (next < seeds.length) {
            running++;
            w.postMessage(seeds[next++]);
          } else if (running === 0) {
            resolve();
          }
        };
        w.on('message', (r: SimResult) => {
          running--;
          results.set(r.seed, r);
          onResult?.(r);
          feed();
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (code !== 0) reject(new Error(`simulator worker exited with code ${code}`));
        });
        feed();
      }
    });
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
  return seeds.map((s) => results.get(s)!);
}
