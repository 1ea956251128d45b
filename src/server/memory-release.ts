// Giving a replaced snapshot's memory back. The key-value store keeps its newest snapshot's bytes
// as its base (src/kv/base-table.ts), so each snapshot saved or installed lets go of the one
// before: hundreds of MB at 1M keys, in one ArrayBuffer outside the V8 heap. V8 frees such a
// buffer only at a major GC, and it starts one for outside memory only when more is allocated
// (the next snapshot); an idle or lightly loaded member held two or three snapshots' bytes
// (issue 11: 1M keys, ~550 MB of ArrayBuffers where one base is ~290 MB). So after a large
// snapshot the server asks for one major GC, in a task of its own, at most once per
// MIN_INTERVAL_MS. Where the runtime offers no way to ask (a flag refused), it does nothing.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Snapshots smaller than this are left to the collector's own pace: the gain is small. */
export const RELEASE_MIN_BYTES = 64 * 1024 * 1024;
const MIN_INTERVAL_MS = 5_000;

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => unknown;

let gcFunction: GcFunction | null | undefined;

/** V8's gc(), exposed for this process once; null if it cannot be. */
function collector(): GcFunction | null {
  if (gcFunction !== undefined) return gcFunction;
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (typeof existing === 'function') return (gcFunction = existing);
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    gcFunction = typeof fn === 'function' ? (fn as GcFunction) : null;
  } catch {
    gcFunction = null;
  }
  return gcFunction;
}

export interface MemoryReleaser {
  /** A snapshot of `bytes` replaced the one before. */
  snapshotReplaced(bytes: number): void;
  /** Major GCs asked for so far. */
  readonly released: number;
  close(): void;
}

export function memoryReleaser(now: () => number = Date.now): MemoryReleaser {
  let last = Number.NEGATIVE_INFINITY;
  let pending: NodeJS.Immediate | null = null;
  let released = 0;
  return {
    snapshotReplaced(bytes) {
      if (bytes < RELEASE_MIN_BYTES || pending !== null || now() - last < MIN_INTERVAL_MS) return;
      const gc = collector();
      if (gc === null) return;
      // After the current turn: the store adopts the new base before the runtime reports it.
      pending = setImmediate(() => {
        pending = null;
        last = now();
        released++;
        gc({ type: 'major', execution: 'async' });
      });
    },
    get released() {
      return released;
    },
    close() {
      if (pending !== null) clearImmediate(pending);
      pending = null;
    },
  };
}
