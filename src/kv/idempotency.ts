// The table of applied idempotency keys (Raft dissertation §6.3, "Implementing linearizable
// semantics"): a command whose `<client>/<seq>` was already applied is not applied again and gets
// the first answer. Bounded two ways, both deterministic because they depend only on applied
// entries: a record count (the oldest go first) and an age measured in log-carried time.
//
// The log clock is the largest `time` any applied command carried. Leaders' clocks may disagree,
// so a new leader may stamp an earlier time than its predecessor; taking the maximum keeps the
// clock monotone, which keeps records in insertion order sorted by stamp, so expiry only ever
// looks at the oldest record.
import type { KvResult } from './result.js';

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
  private head = 0;
  private logClock = 0;

  constructor(
    readonly maxRecords: number,
    readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.records.size;
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
    this.order.push(key);
    // Evict the oldest: a retry that arrives after its record is evicted is applied again, the
    // price of a bounded table (§6.3 discusses the same trade-off for client sessions).
    while (this.records.size > this.maxRecords) this.dropOldest();
  }

  private dropOldest(): void {
    this.records.delete(this.order[this.head]!);
    this.head++;
    // Reclaim the consumed front once it is half the array: amortized O(1) per record.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
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

  /** Replaces the whole table (restore). Records MUST come oldest first, keys distinct. */
  reset(clock: number, records: Iterable<readonly [string, IdempotencyRecord]>): void {
    this.records = new Map();
    this.order = [];
    this.head = 0;
    this.logClock = clock;
    for (const [key, rec] of records) {
      this.records.set(key, rec);
      this.order.push(key);
    }
    while (this.records.size > this.maxRecords) this.dropOldest();
  }
}
