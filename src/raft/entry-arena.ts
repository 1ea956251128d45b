// Where the log keeps its entries' bytes. An entry's data arrives as a view into something much
// larger: a socket chunk or a frame that spans chunks (AppendEntries on a follower), a forwarded
// batch of proposals (the leader), a WAL segment's read buffer (a restart). Kept as such a view,
// a 300-byte entry pins the whole buffer until the log is compacted past it, and a leader's
// per-command buffers each cost an ArrayBuffer of their own. So the log copies what it keeps
// into large slabs filled front to back, in log order: compaction (§7) drops entries from the
// front, so a slab's entries go together and the slab is garbage once the last of them is gone.
// Nothing is reused or freed by hand: a slab lives exactly as long as some view of it does, so
// a message or Ready still holding a compacted entry stays correct. The host may supply the
// slabs (RaftOptions.allocateEntryBytes): a Node host gives Buffers, whose views are Buffers
// too, so the state machine still finds their native one-byte string copy (kv/bytes.ts).
import type { Entry } from './types.js';

/** An empty entry's data: a view of nothing, so it pins no buffer. */
export const NO_DATA = new Uint8Array(0);

/**
 * Every slab any arena allocated, and every buffer it allocated for one large copy. Bytes in
 * one are never written again, so a log that starts from entries already in one (a WAL
 * recovery's arena) keeps them as they are (keepRecovered): copying them again would only
 * double the memory.
 */
const SLABS = new WeakSet<ArrayBufferLike>();

function allocateBytes(bytes: number): Uint8Array {
  return new Uint8Array(bytes);
}

/** @default 1 MiB: a few thousand small entries per ArrayBuffer. */
export const DEFAULT_ARENA_SLAB_BYTES = 1024 * 1024;

export interface EntryArenaStats {
  /** Slabs allocated since start (each is garbage once no kept entry points into it). */
  readonly slabsAllocated: number;
  /** Entries copied into a slab. */
  readonly entriesCopied: number;
  /** Entries large enough to get a right-sized buffer of their own. */
  readonly entriesCopiedAlone: number;
  /** Entries kept without a copy: empty ones, and large ones already the sole owner of their buffer. */
  readonly entriesKeptAsIs: number;
}

export class EntryArena {
  private slab: Uint8Array | null = null;
  private used = 0;
  private slabsAllocated = 0;
  private copied = 0;
  private copiedAlone = 0;
  private keptAsIs = 0;
  /** Entries larger than this get a buffer of their own instead of splitting or wasting a slab. */
  private readonly aloneBytes: number;

  constructor(
    private readonly slabBytes = DEFAULT_ARENA_SLAB_BYTES,
    private readonly allocate: (bytes: number) => Uint8Array = allocateBytes,
  ) {
    if (!Number.isInteger(slabBytes) || slabBytes < 64) throw new Error(`arena slab of ${slabBytes} bytes is too small`);
    this.aloneBytes = slabBytes >>> 4;
  }

  stats(): EntryArenaStats {
    return { slabsAllocated: this.slabsAllocated, entriesCopied: this.copied, entriesCopiedAlone: this.copiedAlone, entriesKeptAsIs: this.keptAsIs };
  }

  /**
   * keep() for what a log starts from (read back from storage): an entry already in a slab of
   * some arena (a WAL recovery copies what it reads straight into its own) is kept as it is.
   * Only here: what arrives later (frames, proposal batches) is never in a slab, so appends pay
   * no lookup for it.
   */
  keepRecovered(entry: Entry): Entry {
    if (entry.data.byteLength > 0 && SLABS.has(entry.data.buffer)) {
      this.keptAsIs++;
      return entry;
    }
    return this.keep(entry);
  }

  /**
   * The entry to keep in the log: `entry` itself when its data pins nothing beyond itself, else
   * a copy whose data lives in a slab (or, if large, in a buffer of exactly its size).
   */
  keep(entry: Entry): Entry {
    const data = entry.data;
    const n = data.byteLength;
    if (n === 0) {
      // Even an empty view pins its whole buffer (a no-op of §8 read back from a WAL segment).
      this.keptAsIs++;
      return data.buffer.byteLength === 0 ? entry : { index: entry.index, term: entry.term, type: entry.type, data: NO_DATA };
    }
    // A large entry that already owns its whole buffer costs nothing extra as it is.
    if (n > this.aloneBytes && n === data.buffer.byteLength) {
      this.keptAsIs++;
      return entry;
    }
    return { index: entry.index, term: entry.term, type: entry.type, data: this.copy(data, 0, n) };
  }

  /**
   * `source[start, start + length)` copied into a slab (or, if large, a buffer of its own): the
   * view to keep. For a reader that builds entries itself (WAL recovery) and so makes no view of
   * the source first.
   */
  copy(source: Uint8Array, start: number, length: number): Uint8Array {
    if (length === 0) return NO_DATA;
    if (length > this.aloneBytes) {
      // Not a slice of a Buffer: that is a view, not a copy.
      const alone = this.allocate(length);
      alone.set(new Uint8Array(source.buffer, source.byteOffset + start, length));
      // Never written again either: a log that starts from views of it keeps them (keepRecovered).
      SLABS.add(alone.buffer);
      this.copiedAlone++;
      return alone;
    }
    let slab = this.slab;
    if (slab === null || this.used + length > slab.byteLength) {
      slab = this.allocate(this.slabBytes);
      SLABS.add(slab.buffer);
      this.slab = slab;
      this.used = 0;
      this.slabsAllocated++;
    }
    const at = this.used;
    // A plain view for the copy: a Buffer's own subarray() costs several times more.
    slab.set(new Uint8Array(source.buffer, source.byteOffset + start, length), at);
    this.used = at + length;
    this.copied++;
    // subarray(), so a Buffer slab gives Buffer views.
    return slab.subarray(at, at + length);
  }
}
