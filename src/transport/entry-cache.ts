// Encoded-entry cache. The leader hands the SAME Entry objects to every follower's AppendEntries
// (raft/types.ts), so each entry is encoded once into an append-only slab and every later
// AppendEntries that carries it reuses those bytes. Entries encoded together sit side by side
// in a slab, so a run is sent as one view however the leader slices it per follower: payload
// bytes are copied once per leader, never once per follower.
//
// Lookup is a ring indexed by entry index and confirmed by object identity, not a WeakMap: a
// WeakMap insert per entry made the garbage collector's ephemeron pass dominate the profile.
// Identity (not index and term) decides a hit, so a different Entry at the same index (another
// term, or a test's arbitrary entries) is never sent with stale bytes.
//
// Memory is bounded: slabs are retired oldest first beyond `budgetBytes`, and a retired slab
// clears the ring slots that point into it, releasing both its bytes and its Entry references.
import { writeVarint, varintSize, checkUint } from './binary.js';
import type { Entry, EntryType } from '../raft/types.js';

export const ENTRY_TYPE_CODES: Readonly<Record<EntryType, number>> = { normal: 0, config: 1 };

interface SlabRef {
  buf: Buffer | null;
  /** Entry indexes encoded here, so retiring the slab can clear their ring slots. */
  readonly indexes: number[];
}

/** Ring size: entries (not bytes) the cache can recognise; a power of two for the mask. */
const RING_SLOTS = 1 << 16;
const RING_MASK = RING_SLOTS - 1;

export interface EntryCacheStats {
  readonly entriesEncoded: number;
  readonly hits: number;
  readonly slabBytes: number;
}

const DEFAULT_SLAB_BYTES = 1024 * 1024;

export class EntryEncodingCache {
  // The ring, as parallel arrays: no object allocated per cached entry.
  private readonly ringEntry: (Entry | undefined)[] = new Array<Entry | undefined>(RING_SLOTS).fill(undefined);
  private readonly ringSlab: (SlabRef | undefined)[] = new Array<SlabRef | undefined>(RING_SLOTS).fill(undefined);
  private readonly ringStart = new Uint32Array(RING_SLOTS);
  private readonly ringEnd = new Uint32Array(RING_SLOTS);
  private readonly slabs: SlabRef[] = [];
  private slabsBytes = 0;
  private current: SlabRef = { buf: null, indexes: [] };
  private used = 0;
  private encoded = 0;
  private hits = 0;

  constructor(
    private readonly budgetBytes: number,
    private readonly slabBytes = DEFAULT_SLAB_BYTES,
  ) {}

  stats(): EntryCacheStats {
    return { entriesEncoded: this.encoded, hits: this.hits, slabBytes: this.slabsBytes };
  }

  /**
   * Appends views covering the encoding of `entries`, in order, to `out`; adjacent encodings in
   * the same slab are merged into one view. Returns the number of bytes covered.
   */
  encodeRun(entries: readonly Entry[], out: Buffer[]): number {
    let total = 0;
    let runSlab: Buffer | null = null;
    let runStart = 0;
    let runEnd = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      // Low 16 bits of the index; `&` keeps them right for any safe integer.
      let slot = entry.index & RING_MASK;
      let slab = this.ringEntry[slot] === entry ? this.ringSlab[slot]!.buf : null;
      if (slab === null) {
        slot = this.encode(entry);
        slab = this.ringSlab[slot]!.buf!;
      } else {
        this.hits++;
      }
      const start = this.ringStart[slot]!;
      const end = this.ringEnd[slot]!;
      total += end - start;
      if (slab === runSlab && start === runEnd) {
        runEnd = end;
        continue;
      }
      if (runSlab !== null) out.push(runSlab.subarray(runStart, runEnd));
      runSlab = slab;
      runStart = start;
      runEnd = end;
    }
    if (runSlab !== null) out.push(runSlab.subarray(runStart, runEnd));
    return total;
  }

  /** Encodes `entry` into a slab and records it in the ring; returns its slot. */
  private encode(entry: Entry): number {
    checkUint(entry.index, 'entry index');
    checkUint(entry.term, 'entry term');
    const typeCode = ENTRY_TYPE_CODES[entry.type];
    const dataLength = entry.data.length;
    const size = varintSize(entry.index) + varintSize(entry.term) + 1 + varintSize(dataLength) + dataLength;
    let slab: SlabRef;
    let start: number;
    if (size > this.slabBytes / 4) {
      // A big entry gets its own buffer so it neither wastes a slab's tail nor splits one.
      slab = this.addSlab(size);
      start = 0;
    } else {
      if (this.current.buf === null || this.used + size > this.current.buf.length) {
        this.current = this.addSlab(this.slabBytes);
        this.used = 0;
      }
      slab = this.current;
      start = this.used;
      this.used += size;
    }
    const buf = slab.buf!;
    let o = writeVarint(buf, start, entry.index);
    o = writeVarint(buf, o, entry.term);
    buf[o++] = typeCode;
    o = writeVarint(buf, o, dataLength);
    buf.set(entry.data, o);
    const slot = entry.index & RING_MASK;
    this.ringEntry[slot] = entry;
    this.ringSlab[slot] = slab;
    this.ringStart[slot] = start;
    this.ringEnd[slot] = start + size;
    slab.indexes.push(entry.index);
    this.encoded++;
    return slot;
  }

  private addSlab(bytes: number): SlabRef {
    const ref: SlabRef = { buf: Buffer.allocUnsafeSlow(bytes), indexes: [] };
    this.slabs.push(ref);
    this.slabsBytes += bytes;
    // Keep the newest slab even if it alone exceeds the budget: it is being filled right now.
    while (this.slabsBytes > this.budgetBytes && this.slabs.length > 1) this.retire(this.slabs.shift()!);
    return ref;
  }

  private retire(old: SlabRef): void {
    this.slabsBytes -= old.buf!.length;
    old.buf = null;
    for (const index of old.indexes) {
      const slot = index & RING_MASK;
      if (this.ringSlab[slot] === old) {
        this.ringSlab[slot] = undefined;
        this.ringEntry[slot] = undefined;
      }
    }
  }
}
