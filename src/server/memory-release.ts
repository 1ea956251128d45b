// Giving a replaced snapshot's memory back. The key-value store keeps its newest snapshot's
// records as its base (src/kv/base-table.ts): read from the snapshot's file once it can
// (docs/storage.md), but a snapshot restored at a start or installed is held in memory until
// the log after it is replayed. Letting go of such bytes (KvStateMachine.onBaseReleased) frees
// hundreds of MB at 1M keys, in one ArrayBuffer outside the V8 heap. V8 frees such a buffer only
// at a major GC, and it starts one for outside memory only when more is allocated (the next
// snapshot); an idle or lightly loaded member held two or three snapshots' bytes (issue 11: 1M
// keys, ~550 MB of ArrayBuffers where one base is ~290 MB).
//
// So after a large base is let go the server asks V8 to collect, at most once per MIN_INTERVAL_MS. It
// asks the cheap way first: an ArrayBuffer larger than V8's allowance for outside memory grown
// since its last full collection (64 MiB), allocated and dropped at once. V8 answers that by
// marking incrementally, beside the program, and frees the old base with a pause of ~10-40 ms.
// The buffer is never written, so it costs address space, not memory. Calling gc() instead
// marks the whole heap in one pause: 80-143 ms per snapshot on a member at 1M keys under load,
// and 450 ms for 600,000 live objects in a test. If the old bytes are still held CHECK_MS
// later (the allowance was not crossed, or a V8 that no longer works this way), it calls gc().
// Where the runtime offers no gc() (a flag refused), the ask is all it does.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Snapshots smaller than this are left to the collector's own pace: the gain is small. */
export const RELEASE_MIN_BYTES = 64 * 1024 * 1024;
const MIN_INTERVAL_MS = 5_000;
/** Twice V8's 64 MiB allowance for outside memory (Heap's external allocation soft limit). */
const NUDGE_BYTES = 128 * 1024 * 1024;
const CHECK_MS = 2_000;

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
  /** Collections asked for so far (each an allocation over V8's allowance). */
  readonly released: number;
  /** Of those, the ones that had not returned the old bytes CHECK_MS later and were forced with gc(). */
  readonly forced: number;
  close(): void;
}

export interface MemoryReleaserOptions {
  readonly now?: () => number;
  /** Bytes of ArrayBuffers the process holds. @default process.memoryUsage().arrayBuffers */
  readonly arrayBuffers?: () => number;
  /** The forced collection. @default V8's gc(), exposed once */
  readonly gc?: GcFunction | null;
  /** How long an ask has to return the bytes before gc() is called. @default 2000 */
  readonly checkMs?: number;
  /** Told when the ask did not return the bytes and gc() is called: `heldBytes` of ArrayBuffers were held. */
  readonly onForced?: (heldBytes: number) => void;
}

export function memoryReleaser(options: MemoryReleaserOptions = {}): MemoryReleaser {
  const now = options.now ?? Date.now;
  const arrayBuffers = options.arrayBuffers ?? (() => process.memoryUsage().arrayBuffers);
  const checkMs = options.checkMs ?? CHECK_MS;
  let last = Number.NEGATIVE_INFINITY;
  let pending: NodeJS.Immediate | null = null;
  let check: NodeJS.Timeout | null = null;
  let released = 0;
  let forced = 0;
  return {
    snapshotReplaced(bytes) {
      if (bytes < RELEASE_MIN_BYTES || pending !== null || now() - last < MIN_INTERVAL_MS) return;
      // After the current turn: whatever else held the old bytes in it (the save of a snapshot
      // in memory, a restore's decoding) has let go by then.
      pending = setImmediate(() => {
        pending = null;
        last = now();
        released++;
        // A check still waiting judged a snapshot this one replaced: this ask covers both.
        if (check !== null) clearTimeout(check);
        const before = arrayBuffers();
        try {
          // Allocated and dropped: V8 counts it as outside memory and starts marking.
          void new ArrayBuffer(NUDGE_BYTES);
        } catch {
          // No address space for it: the check below finds the bytes held and calls gc().
        }
        check = setTimeout(() => {
          check = null;
          // Half the replaced snapshot gone (the rest of the process's buffers move far less).
          const held = arrayBuffers();
          if (held <= before - bytes / 2) return;
          const gc = options.gc === undefined ? collector() : options.gc;
          if (gc === null) return;
          forced++;
          options.onForced?.(held);
          gc({ type: 'major', execution: 'async' });
        }, checkMs);
        check.unref();
      });
    },
    get released() {
      return released;
    },
    get forced() {
      return forced;
    },
    close() {
      if (pending !== null) clearImmediate(pending);
      if (check !== null) clearTimeout(check);
      pending = null;
      check = null;
    },
  };
}
