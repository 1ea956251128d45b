// The table of applied idempotency keys (Raft dissertation §6.3, "Implementing linearizable
// semantics"): a command whose `<client>/<seq>` was already applied is not applied again and gets
// the first answer. Bounded two ways, both deterministic because they depend only on applied
// entries: a record count (the oldest go first) and an age measured in log-carried time.
//
// The log clock is the largest `time` any applied command carried. Leaders' clocks may disagree,
// so a new leader may stamp an earlier time than its predecessor; taking the maximum keeps the
// clock monotone, which keeps records in insertion order sorted by stamp, so expiry only ever
// looks at the oldest record.
import { utf8Length } from './limits.js';
import { resultSize, type KvResult } from './result.js';

/** Per-record cost beyond its key and encoded result: the time stamp, map and order slots. */
export const IDEMPOTENCY_RECORD_OVERHEAD_BYTES = 48;

/** What one record adds to the table's `bytes`. */
export function idempotencyRecordBytes(key: string, result: KvResult): number {
  return utf8Length(key) + resultSize(result) + IDEMPOTENCY_RECORD_OVERHEAD_BYTES;
}

export interface IdempotencyRecord {
  /** The log clock when the command was applied. */
  readonly time: number;
  readonly result: KvResult;
}

export class IdempotencyTable {
  private records = new Map<string, IdempotencyRecord>();
  /**
   * Keys oldest first, from `head` on. A Map alone would do in theory (it keeps insertion
   * order), but V8 leaves deleted slots at the front of a Map's table, so repeatedly reading its
   * oldest entry scans them all and eviction turns quadratic: measured, 100,000 records fall to
   * a few thousand inserts per second. A plain array with a moving head stays O(1).
   */
  private order: string[] = [];
  /** What each key in `order` added to `bytes` (so an eviction does not size its result again). */
  private orderBytes: number[] = [];
  private head = 0;
  private logClock = 0;
  private totalBytes = 0;
  /** While a snapshot holds a capture of the table: the records evicted since (the first eviction of a key wins). */
  private evictedSinceCapture: Map<string, IdempotencyRecord> | null = null;

  constructor(
    readonly maxRecords: number,
    readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  /**
   * Estimated size: each record's key, its result as a snapshot encodes it, and a fixed
   * overhead (idempotencyRecordBytes). Kept up to date on every insert, eviction and reset.
   */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The log clock: the largest command time applied so far. */
  get clock(): number {
    return this.logClock;
  }

  /** Advances the log clock to `time` (if later) and drops records older than the TTL. */
  observe(time: number): void {
    if (time <= this.logClock) return;
    this.logClock = time;
    const horizon = time - this.ttlMs;
    while (this.head < this.order.length) {
      const key = this.order[this.head]!;
      if (this.records.get(key)!.time > horizon) break;
      this.dropOldest();
    }
  }

  lookup(key: string): KvResult | undefined {
    return this.records.get(key)?.result;
  }

  /** Records a first result. `key` MUST NOT be present (lookup() first). */
  remember(key: string, result: KvResult): void {
    this.records.set(key, { time: this.logClock, result });
    const bytes = idempotencyRecordBytes(key, result);
    this.order.push(key);
    this.orderBytes.push(bytes);
    this.totalBytes += bytes;
    // Evict the oldest: a retry that arrives after its record is evicted is applied again, the
    // price of a bounded table (§6.3 discusses the same trade-off for client sessions).
    while (this.records.size > this.maxRecords) this.dropOldest();
  }

  private dropOldest(): void {
    const key = this.order[this.head]!;
    const evicted = this.evictedSinceCapture;
    if (evicted !== null && !evicted.has(key)) evicted.set(key, this.records.get(key)!);
    this.totalBytes -= this.orderBytes[this.head]!;
    this.records.delete(key);
    this.head++;
    // Reclaim the consumed front once it is half the array: amortized O(1) per record.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.orderBytes = this.orderBytes.slice(this.head);
      this.head = 0;
    }
  }

  /** Records oldest first, for snapshots. */
  *entries(): IterableIterator<[string, IdempotencyRecord]> {
    for (let i = this.head; i < this.order.length; i++) {
      const key = this.order[i]!;
      yield [key, this.records.get(key)!];
    }
  }

  /**
   * The table as of now, for a snapshot written later in slices: the keys oldest first (a copy
   * of references), and each one's record as of now even if it is evicted meanwhile
   * (copy-on-write: evictions keep what they drop until end()). One at a time; reset() ends it.
   */
  capture(): { readonly keys: readonly string[]; recordOf(key: string): IdempotencyRecord; end(): void } {
    const evicted = new Map<string, IdempotencyRecord>();
    this.evictedSinceCapture = evicted;
    const records = this.records;
    return {
      keys: this.order.slice(this.head),
      recordOf: (key) => (evicted.size === 0 ? undefined : evicted.get(key)) ?? records.get(key)!,
      end: () => {
        if (this.evictedSinceCapture === evicted) this.evictedSinceCapture = null;
      },
    };
  }

  /**
   * Replaces the whole table with `records` itself, not a copy (restore: the Map a snapshot was
   * decoded into). Oldest first; the caller MUST NOT use the Map afterwards.
   */
  adopt(clock: number, records: Map<string, IdempotencyRecord>): void {
    this.evictedSinceCapture = null;
    this.records = records;
    this.order = [];
    this.orderBytes = [];
    this.head = 0;
    this.logClock = clock;
    let total = 0;
    for (const [key, rec] of records) {
      const bytes = idempotencyRecordBytes(key, rec.result);
      this.order.push(key);
      this.orderBytes.push(bytes);
      total += bytes;
    }
    this.totalBytes = total;
    while (this.records.size > this.maxRecords) this.dropOldest();
  }

  /** Replaces the whole table (restore). Records MUST come oldest first, keys distinct. */
  reset(clock: number, records: Iterable<readonly [string, IdempotencyRecord]>): void {
    this.adopt(clock, new Map(records));
  }
}
