// The replicated log as the core holds it: the entries after the last snapshot (§7), in memory.
// Index i lives at entries[i - snapshotIndex - 1]. Terms never decrease along a log (each
// leader appends in its own, newer term), which lets the conflict hints of §5.3 use binary search.
// Two cursors say how far storage has it: entries from `unstableFrom` on are not yet handed to
// storage in a Ready, and entries up to `stableIndex` are durable (Figure 2). The log moves them
// itself when it truncates or restores, so they can never point past what it holds.
// What it keeps it copies out of the buffers it came in (entry-arena.ts), so the log's memory is
// its entries' bytes, not the frames, batches and read buffers around them.
import { EntryArena } from './entry-arena.js';
import type { Entry, SnapshotMeta } from './types.js';

const ENTRY_OVERHEAD_BYTES = 24;
/** The data of an entry or message with none (the no-op of §8, a snapshot the runtime fills in). */
export const EMPTY_DATA = new Uint8Array(0);

/** What an entry costs to ship or hold: its payload plus a fixed header estimate. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}

export class RaftLog {
  private entries: Entry[];
  snapshotIndex: number;
  snapshotTerm: number;
  /** First index not yet handed to storage in a Ready. */
  private unstableFrom: number;
  /**
   * Highest index known durable on this server's storage: a leader counts its own copy toward
   * commitment only up to here (thesis §10.2.1), whatever it has already sent.
   */
  private stable: number;
  private readonly arena: EntryArena;

  constructor(
    snapshot: Pick<SnapshotMeta, 'index' | 'term'> | null,
    entries: readonly Entry[],
    arena: { readonly slabBytes?: number; readonly allocate?: (bytes: number) => Uint8Array } = {},
  ) {
    this.snapshotIndex = snapshot?.index ?? 0;
    this.snapshotTerm = snapshot?.term ?? 0;
    this.arena = new EntryArena(arena.slabBytes, arena.allocate);
    this.entries = new Array<Entry>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.index !== this.snapshotIndex + 1 + i) {
        throw new Error(`log is not contiguous at index ${this.snapshotIndex + 1 + i}`);
      }
      // Read back from storage: views into its read buffers (a WAL segment each), or already
      // in slabs (FileStorage's recovery copies them into an arena of its own).
      this.entries[i] = this.arena.keepRecovered(entries[i]!);
    }
    // What the log starts with was read back from storage, or is the founding state the
    // runtime stores before it starts the core: durable either way.
    this.unstableFrom = this.lastIndex + 1;
    this.stable = this.lastIndex;
  }

  get stableIndex(): number {
    return this.stable;
  }

  /** Are there entries no Ready has handed to storage yet? */
  get hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex;
  }

  /** The entries no Ready has handed to storage yet, now handed over (the Ready carries them). */
  takeUnstable(): Entry[] {
    const entries = this.slice(this.unstableFrom, this.lastIndex + 1);
    this.unstableFrom = this.lastIndex + 1;
    return entries;
  }

  /**
   * The Ready that ended at (index, term) is durable. Its entries count as stable only if
   * nothing replaced them while they were being written.
   */
  stableTo(index: number, term: number): void {
    if (index > this.stable && this.termAt(index) === term) this.stable = index;
  }

  get firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  get lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.snapshotTerm : this.entries[n - 1]!.term;
  }

  /** The term at `index`; undefined when compacted away or not (yet) in the log. */
  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  entryAt(index: number): Entry | undefined {
    if (index <= this.snapshotIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  /**
   * Entries [from, to) capped at `maxBytes` (always at least one entry when the range is not
   * empty, so a single oversized entry still moves).
   */
  slice(from: number, to: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (from < this.firstIndex) throw new Error(`slice from ${from} reaches into the snapshot (first index ${this.firstIndex})`);
    const end = Math.min(to, this.lastIndex + 1);
    if (from >= end) return [];
    const lo = from - this.snapshotIndex - 1;
    let hi = end - this.snapshotIndex - 1;
    if (maxBytes !== Number.POSITIVE_INFINITY) {
      let bytes = entryBytes(this.entries[lo]!);
      let i = lo + 1;
      while (i < hi) {
        bytes += entryBytes(this.entries[i]!);
        if (bytes > maxBytes) break;
        i++;
      }
      hi = i;
    }
    return this.entries.slice(lo, hi);
  }

  /** Appends entries that start right after the last index. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    if (entries[0]!.index !== this.lastIndex + 1) {
      throw new Error(`append at ${entries[0]!.index} would leave a gap after ${this.lastIndex}`);
    }
    for (let i = 0; i < entries.length; i++) this.entries.push(this.arena.keep(entries[i]!));
  }

  /**
   * Appends one entry right after the last index. The log keeps a copy when `entry.data` is a
   * view into a larger buffer, so callers that need the kept entry read it back (entryAt).
   */
  appendOne(entry: Entry): void {
    this.entries.push(this.arena.keep(entry));
  }

  /** Removes `index` and everything after it (a conflicting suffix, §5.3). */
  truncateFrom(index: number): void {
    if (index <= this.snapshotIndex) throw new Error(`cannot truncate at ${index}: compacted up to ${this.snapshotIndex}`);
    if (index <= this.lastIndex) this.entries.length = index - this.snapshotIndex - 1;
    // The replacements go to storage in the next Ready, and what stood there is no longer ours.
    if (this.unstableFrom > index) this.unstableFrom = index;
    if (this.stable >= index) this.stable = index - 1;
  }

  /** Drops entries up to and including `index`, which a snapshot now covers (§7). */
  compact(index: number, term: number): void {
    if (index <= this.snapshotIndex) return;
    const drop = Math.min(index, this.lastIndex) - this.snapshotIndex;
    this.entries.splice(0, drop);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /**
   * Replaces the whole log with a snapshot's position (InstallSnapshot, §7 step 7). The snapshot
   * goes to storage in a Ready of its own; nothing after it is stable until that Ready is.
   */
  restore(index: number, term: number): void {
    this.entries = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.unstableFrom = index + 1;
    this.stable = Math.min(this.stable, index);
  }

  /** §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as this one? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm;
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex);
  }

  /** The first index in [firstIndex, upTo] whose term is `term`, given termAt(upTo) === term. */
  firstIndexOfTerm(term: number, upTo: number): number {
    let lo = this.firstIndex;
    let hi = upTo;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.termAt(mid)! >= term) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The last index ≤ upTo holding `term`, or 0 if this log has no entry of that term there. */
  lastIndexOfTerm(term: number, upTo: number): number {
    let lo = this.snapshotIndex;
    let hi = Math.min(upTo, this.lastIndex);
    if (hi < lo) return 0;
    // Find the highest index in [lo, hi] with term ≤ `term`.
    if (this.termAt(lo)! > term) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.termAt(mid)! <= term) lo = mid;
      else hi = mid - 1;
    }
    return this.termAt(lo) === term ? lo : 0;
  }
}
