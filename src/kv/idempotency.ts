// The table of applied idempotency keys (Raft dissertation §6.3, "Implementing linearizable
// semantics"): a command whose `<client>/<seq>` was already applied is not applied again and gets
// the first answer. Bounded two ways, both deterministic because they depend only on applied
// entries: a record count (the oldest go first) and an age measured in log-carried time.
//
// The log clock is the largest `time` any applied command carried. Leaders' clocks may disagree,
// so a new leader may stamp an earlier time than its predecessor; taking the maximum keeps the
// clock monotone, which keeps records in insertion order sorted by stamp, so expiry only ever
// looks at the oldest record.
import { ByteReader, utf8At } from './bytes.js';
import { utf8Length } from './limits.js';
import { readResult, resultSize, type KvResult } from './result.js';

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

/**
 * A snapshot's idempotency records left in its bytes (a restart's restore, snapshot.ts), oldest
 * first and already checked: each key's UTF-8 bytes, its time, where its result begins, and
 * what it adds to the table's `bytes`; the keys hashed into an open-addressing index.
 */
export interface EncodedIdempotency {
  readonly data: Uint8Array;
  readonly count: number;
  readonly keyStarts: Float64Array;
  readonly keyLengths: Int32Array;
  readonly resultStarts: Float64Array;
  readonly times: Float64Array;
  readonly costs: Float64Array;
  /** Record index + 1 at a key's slot or after it (linear probing), 0 where empty; a power of two long. */
  readonly slots: Int32Array;
  /** The keyHash of the record at each slot: most keys that are not it are told apart without their bytes. */
  readonly hashes: Int32Array;
  /** The hash's seed (keyHash): drawn per restore, so clients cannot choose keys that collide. */
  readonly seed: number;
}

/** The index's hash of the UTF-8 bytes `buf[start, start + n)` (FNV-1a, seeded). */
export function keyHash(buf: Uint8Array, start: number, n: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = start; i < start + n; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

const utf8 = new TextEncoder();

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
  /**
   * The records a restart's restore left in the snapshot's bytes (adoptEncoded), older than
   * every record above, from `encodedHead` on: most are evicted by the replay's own records
   * without ever being decoded. Null when there are none.
   */
  private encoded: EncodedIdempotency | null = null;
  private encodedHead = 0;
  /** A key being looked up among the encoded records, as UTF-8. */
  private probe = new Uint8Array(64);

  constructor(
    readonly maxRecords: number,
    readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.records.size + (this.encoded === null ? 0 : this.encoded.count - this.encodedHead);
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
    for (;;) {
      const e = this.encoded;
      if (e !== null) {
        if (e.times[this.encodedHead]! > horizon) return;
      } else if (!(this.head < this.order.length && this.orderTimes[this.head]! <= horizon)) return;
      this.dropOldest();
    }
  }

  lookup(key: string): KvResult | undefined {
    const result = this.records.get(key);
    return result !== undefined || this.encoded === null ? result : this.lookupEncoded(key);
  }

  /** The result of `key` among the encoded records still in the table, decoded; undefined if it is not there. */
  private lookupEncoded(key: string): KvResult | undefined {
    const e = this.encoded!;
    if (key.length * 3 > this.probe.length) this.probe = new Uint8Array(key.length * 3);
    const probe = this.probe;
    // An ASCII key (the client's `<client>/<seq>`) is its own UTF-8: copied without an encoder call.
    let n = key.length;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) {
        n = utf8.encodeInto(key, probe).written;
        break;
      }
      probe[i] = c;
    }
    const mask = e.slots.length - 1;
    const data = e.data;
    const h = keyHash(probe, 0, n, e.seed);
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const at = e.slots[s]!;
      if (at === 0) return undefined;
      const i = at - 1;
      if (e.hashes[s] !== (h | 0) || e.keyLengths[i] !== n) continue;
      const start = e.keyStarts[i]!;
      let j = 0;
      while (j < n && data[start + j] === probe[j]) j++;
      if (j < n) continue;
      return i < this.encodedHead ? undefined : readResult(new ByteReader(data, e.resultStarts[i]!));
    }
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
    while (this.size > this.maxRecords) this.dropOldest();
  }

  private dropOldest(): void {
    const e = this.encoded;
    if (e !== null) {
      // The encoded records are the oldest; capture() decodes them, so no snapshot is watching.
      this.totalBytes -= e.costs[this.encodedHead++]!;
      if (this.encodedHead === e.count) this.encoded = null;
      return;
    }
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
    this.decodeEncoded();
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
    this.encoded = null;
    this.encodedHead = 0;
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
    while (this.size > this.maxRecords) this.dropOldest();
  }

  /**
   * The encoded records still in the table keep only their own bytes, copied out of the
   * snapshot's: the snapshot's bytes (hundreds of MB at 1M keys) no longer stay in memory for
   * them. The records are the section at the snapshot's end, at increasing positions.
   */
  detachEncoded(): void {
    const e = this.encoded;
    if (e === null) return;
    const from = e.keyStarts[this.encodedHead]!;
    const shift = (starts: Float64Array): Float64Array => starts.map((at) => at - from);
    this.encoded = { ...e, data: e.data.slice(from), keyStarts: shift(e.keyStarts), resultStarts: shift(e.resultStarts) };
  }

  /**
   * Replaces the whole table with records left in a snapshot's bytes (a restart's restore): they
   * are decoded only when looked up, and evicted without being decoded.
   */
  adoptEncoded(clock: number, encoded: EncodedIdempotency): void {
    this.adopt(clock, new Map(), []);
    if (encoded.count === 0) return;
    this.encoded = encoded;
    let total = 0;
    for (let i = 0; i < encoded.count; i++) total += encoded.costs[i]!;
    this.totalBytes = total;
    while (this.size > this.maxRecords) this.dropOldest();
  }

  /** The encoded records still in the table decoded, ahead of the others (they are older), as adopt() would hold them. */
  private decodeEncoded(): void {
    const e = this.encoded;
    if (e === null) return;
    const records = new Map<string, KvResult>();
    const order: string[] = [];
    const times: number[] = [];
    const bytes: number[] = [];
    for (let i = this.encodedHead; i < e.count; i++) {
      const key = utf8At(e.data, e.keyStarts[i]!, e.keyLengths[i]!);
      records.set(key, readResult(new ByteReader(e.data, e.resultStarts[i]!)));
      order.push(key);
      times.push(e.times[i]!);
      bytes.push(e.costs[i]!);
    }
    for (let i = this.head; i < this.order.length; i++) {
      const key = this.order[i]!;
      records.set(key, this.records.get(key)!);
      order.push(key);
      times.push(this.orderTimes[i]!);
      bytes.push(this.orderBytes[i]!);
    }
    this.records = records;
    this.order = order;
    this.orderTimes = times;
    this.orderBytes = bytes;
    this.head = 0;
    this.encoded = null;
    this.encodedHead = 0;
  }
}
