// Delays between attempts: exponential backoff with jitter, raised to the server's Retry-After
// and capped, so a client never waits unboundedly on a hint nor hammers a cluster mid-election.

/**
 * The delay before retry number `retry` (0 for the first retry). Half of it is random, so many
 * clients that failed together do not retry together.
 */
export function backoffDelayMs(
  retry: number,
  baseMs: number,
  maxMs: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(retry, 30));
  const jittered = exponential / 2 + (random() * exponential) / 2;
  return Math.min(maxMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** A Retry-After header (delta seconds or an HTTP date) in milliseconds; undefined if absent or bad. */
export function parseRetryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Waits `ms`, or less if `signal` aborts first (it resolves then; the caller checks the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
