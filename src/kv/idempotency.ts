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

/** The table as a snapshot captured it (capture()): keys oldest first, their times, their results. */
export interface IdempotencyCapture {
  readonly keys: readonly string[];
  /** `times[i]` is the log clock when `keys[i]` was applied. */
  readonly times: readonly number[];
  /** The key's result as of the capture, even if evicted since. */
  resultOf(key: string): KvResult;
  end(): void;
}

export class IdempotencyTable {
  /**
   * Each key's first result. The time it was applied lives in `orderTimes`, not in a record
   * object beside the result: one long-lived object fewer per write (a write's objects are what
   * each scavenge copies before promoting them), and expiry reads a number, not a Map.
   */
  private records = new Map<string, KvResult>();
  /**
   * Keys oldest first, from `head` on. A Map alone would do in theory (it keeps insertion
   * order), but V8 leaves deleted slots at the front of a Map's table, so repeatedly reading its
   * oldest entry scans them all and eviction turns quadratic: measured, 100,000 records fall to
   * a few thousand inserts per second. A plain array with a moving head stays O(1).
   */
  private order: string[] = [];
  /** When each key in `order` was applied (the log clock then), and what it added to `bytes`. */
  private orderTimes: number[] = [];
  private orderBytes: number[] = [];
  private head = 0;
  private logClock = 0;
  private totalBytes = 0;
  /** While a snapshot holds a capture of the table: the results evicted since (the first eviction of a key wins). */
  private evictedSinceCapture: Map<string, KvResult> | null = null;

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
    while (this.head < this.order.length && this.orderTimes[this.head]! <= horizon) this.dropOldest();
  }

  lookup(key: string): KvResult | undefined {
    return this.records.get(key);
  }

  /** Records a first result. `key` MUST NOT be present (lookup() first). */
  remember(key: string, result: KvResult): void {
    this.records.set(key, result);
    const bytes = idempotencyRecordBytes(key, result);
    this.order.push(key);
    this.orderTimes.push(this.logClock);
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
      this.orderTimes = this.orderTimes.slice(this.head);
      this.orderBytes = this.orderBytes.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The table as of now, for a snapshot written later in slices: the keys oldest first and their
   * times (copies of the arrays), and each key's result as of now even if it is evicted
   * meanwhile (copy-on-write: evictions keep what they drop until end()). One at a time;
   * adopt() ends it.
   */
  capture(): IdempotencyCapture {
    const evicted = new Map<string, KvResult>();
    this.evictedSinceCapture = evicted;
    const records = this.records;
    return {
      keys: this.order.slice(this.head),
      times: this.orderTimes.slice(this.head),
      resultOf: (key) => (evicted.size === 0 ? undefined : evicted.get(key)) ?? records.get(key)!,
      end: () => {
        if (this.evictedSinceCapture === evicted) this.evictedSinceCapture = null;
      },
    };
  }

  /**
   * Replaces the whole table with `records` itself, not a copy (restore: the Map a snapshot was
   * decoded into), oldest first, `times[i]` the time of its i-th key. The caller MUST NOT use the
   * Map or the array afterwards.
   */
  adopt(clock: number, records: Map<string, KvResult>, times: number[]): void {
    if (times.length !== records.size) throw new Error(`idempotency table: ${records.size} records but ${times.length} times`);
    this.evictedSinceCapture = null;
    this.records = records;
    this.order = [];
    this.orderTimes = times;
    this.orderBytes = [];
    this.head = 0;
    this.logClock = clock;
    let total = 0;
    for (const [key, result] of records) {
      const bytes = idempotencyRecordBytes(key, result);
      this.order.push(key);
      this.orderBytes.push(bytes);
      total += bytes;
    }
    this.totalBytes = total;
    while (this.records.size > this.maxRecords) this.dropOldest();
  }
}
