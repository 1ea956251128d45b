// The store's base tier: the records of a snapshot, left where they are in the snapshot's bytes,
// with an index of where each begins. A restore reads a snapshot into one buffer anyway; keeping
// its records there (binary-searched by key) instead of decoding 1M of them into 1M record
// objects, 2M strings and a Map makes a restore a scan (no allocation per key) and a stored key
// cost its encoded bytes plus 8 bytes of index, not ~300 bytes of V8 heap beside its value.
// Records are decoded (StoredRecord) only when read. The base never changes: what apply()
// changes lives in the store's overlay (state-machine.ts), and a finished snapshot of the whole
// state becomes the next base (KvStateMachine.beginSnapshot), so the overlay stays small.
//
// A record here is exactly what writeStoredRecord writes (snapshot.ts's `record`), in strictly
// increasing UTF-8 byte order of keys (compareKeys), so its bytes can be copied into the next
// snapshot as they are.
import { ByteReader } from './bytes.js';
import { KvError } from './errors.js';
import { KeyFilter } from './key-filter.js';
import { readStoredRecord, type StoredRecord } from './stored-record.js';

const utf8 = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A key's UTF-8 bytes, the form the base compares in, in a buffer its owner reuses: a lookup
 * allocates nothing for ASCII keys. Each user keeps its own (a walk must not see another's key).
 */
export class KeyBytes {
  bytes = new Uint8Array(64);
  length = 0;

  set(key: string): this {
    const n = key.length;
    if (n * 3 > this.bytes.length) this.bytes = new Uint8Array(n * 3);
    const out = this.bytes;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) {
        this.length = utf8.encodeInto(key, out).written;
        return this;
      }
      out[i] = c;
    }
    this.length = n;
    return this;
  }

  /** The key whose UTF-8 bytes are `buf[start, start + n)`, copied. */
  setBytes(buf: Uint8Array, start: number, n: number): this {
    if (n > this.bytes.length) this.bytes = new Uint8Array(n);
    const out = this.bytes;
    for (let i = 0; i < n; i++) out[i] = buf[start + i]!;
    this.length = n;
    return this;
  }
}

/** A key's UTF-8 bytes in a buffer of their own. */
export function keyBytes(key: string): KeyBytes {
  return new KeyBytes().set(key);
}

/**
 * Where a base reads records it does not hold in memory: a window of their bytes, read from
 * elsewhere (a snapshot file: src/storage/file-window.ts) as needed. The kv code does no I/O of
 * its own; whoever makes a window owns what it reads from and closes it.
 */
export interface RecordWindow {
  /** The window's bytes: replaced by load() when it needs a larger buffer. */
  readonly buf: Uint8Array;
  /**
   * Makes the records' bytes [start, end) (offsets into the records' data, as BaseTable's
   * offsets) readable in `buf`, and returns where `start` lies there. Bytes shown by an earlier
   * call may be overwritten. Throws if they cannot be read.
   */
  load(start: number, end: number): number;
}

/** lowerBound's fence holds every FENCE_STRIDE-th key: the last steps search that many neighbours. */
const FENCE_STRIDE = 32;
/**
 * The same through a window: the neighbours a search ends among are one read, and 8 records
 * (~2.4 KB at 256-byte values) fit one 4 KiB read (3.5 µs on this VM, 5.6 µs for 16 KiB). The
 * fence is then ~1/75 of the records' bytes (~4 MB at 1M keys), still in memory.
 */
const WINDOW_FENCE_STRIDE = 8;

export class BaseTable {
  static readonly EMPTY = new BaseTable(new Uint8Array(0), new Float64Array(1), 0);

  /**
   * `offsets[i]` is where record i begins in `buf`, `offsets[count]` where the last one ends;
   * the records are trusted to be well-formed and in order (scanBaseRecords checked them, or the
   * encoder wrote them).
   */
  constructor(
    private buf: Uint8Array,
    private readonly offsets: Float64Array,
    readonly count: number,
    private readonly window: RecordWindow | null = null,
    keys: BaseKeys | null = null,
  ) {
    this.reader = new ByteReader(buf);
    if (keys !== null) {
      if (window === null) throw new Error('a base in memory builds its own fence');
      this.fence = keys.fence;
      this.fenceStarts = keys.fenceStarts;
      this.filter = keys.filter;
    }
  }

  /**
   * The keys, for a base read through a window that was built seeing every key (BaseKeysBuilder:
   * a scan of a restore, or the snapshot's encoder): a lookup of a key it does not hold reads
   * nothing (key-filter.ts).
   */
  private readonly filter: KeyFilter | null = null;

  /** A reader over `buf` for reads in place (modRevisionAt); unused with a window. */
  private readonly reader: ByteReader;

  /**
   * The same records, read through `window` instead of held in memory: `window` shows the bytes
   * this table's offsets point into. A view this table hands out (rawAt) then lasts only until
   * its next read.
   */
  throughWindow(window: RecordWindow): BaseTable {
    return new BaseTable(window.buf, this.offsets, this.count, window);
  }

  /** Every stride-th key is in the fence. */
  private get stride(): number {
    return this.window === null ? FENCE_STRIDE : WINDOW_FENCE_STRIDE;
  }

  /** Whether the records are read through a window (throughWindow). */
  get isWindowed(): boolean {
    return this.window !== null;
  }

  /**
   * Makes the bytes [start, end) of the records readable in `this.buf` and returns where `start`
   * lies there: `start` itself when the records are in memory.
   */
  private at(start: number, end: number): number {
    const w = this.window;
    if (w === null) return start;
    const p = w.load(start, end);
    this.buf = w.buf;
    return p;
  }

  /** Where record i begins in `this.buf`, its bytes loaded. */
  private recordStart(i: number): number {
    return this.at(this.offsets[i]!, this.offsets[i + 1]!);
  }

  /** Bytes of the records (what a snapshot writes for them). */
  get recordBytes(): number {
    return this.offsets[this.count]! - this.offsets[0]!;
  }

  /**
   * Every FENCE_STRIDE-th record's key, packed (`fenceStarts[j]` to `fenceStarts[j + 1]` is
   * record j·FENCE_STRIDE's), built on the first search. A binary search over a 300 MB base
   * touches ~20 records far apart, each a cache and TLB miss (~350 ns on this VM, ~6 µs a lookup
   * at 1M keys). The fence is ~1/300 of the base's bytes: the first steps run there, in memory
   * that stays cached, and the last five among 32 neighbouring records (docs/benchmarks.md,
   * "Nineteenth session").
   */
  private fence: Uint8Array | null = null;
  private fenceStarts: Uint32Array | null = null;

  /** The first position whose key is ≥ `key`; count if none. */
  lowerBound(key: KeyBytes): number {
    const stride = this.stride;
    if (this.count <= 2 * stride) return this.search(0, this.count, key);
    if (this.fenceStarts === null) this.buildFence();
    const fence = this.fence!;
    const starts = this.fenceStarts!;
    const k = key.bytes;
    const kn = key.length;
    // lo becomes the first fence key > `key`. Fence key lo − 1, if any, is ≤ `key`, so every
    // record before it is < `key`; fence key lo is > `key`. The answer lies in
    // [(lo − 1)·FENCE_STRIDE, lo·FENCE_STRIDE].
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = starts[mid]!;
      const n = starts[mid + 1]! - p;
      const m = n < kn ? n : kn;
      let d = 0;
      for (let j = 0; j < m && d === 0; j++) d = fence[p + j]! - k[j]!;
      if (d === 0) d = n - kn;
      if (d <= 0) lo = mid + 1;
      else hi = mid;
    }
    const to = lo * stride;
    return this.search(lo === 0 ? 0 : to - stride, to < this.count ? to : this.count, key);
  }

  /** The first position in [lo, hi) whose key is ≥ `key`; hi if none. */
  private search(lo: number, hi: number, key: KeyBytes): number {
    // Through a window, one read brings in every record the search may compare, and the one at
    // hi, which indexOf compares next when the search ends there.
    if (this.window !== null && lo < hi) this.at(this.offsets[lo]!, this.offsets[hi < this.count ? hi + 1 : hi]!);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareAt(mid, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private buildFence(): void {
    const stride = this.stride;
    const n = Math.ceil(this.count / stride);
    const starts = new Uint32Array(n + 1);
    let fence = new Uint8Array(n * 32);
    let at = 0;
    for (let j = 0; j < n; j++) {
      const r = this.readerAt(j * stride);
      const length = r.varint();
      if (at + length > fence.length) fence = grown(fence, at + length);
      fence.set(r.buf.subarray(r.pos, r.pos + length), at);
      starts[j] = at;
      at += length;
    }
    starts[n] = at;
    this.fence = fence.subarray(0, at);
    this.fenceStarts = starts;
  }

  /** The position of `key`; -1 if the base does not hold it. */
  indexOf(key: KeyBytes): number {
    if (this.filter !== null && !this.filter.mayHold(key.bytes, key.length)) return -1;
    const i = this.lowerBound(key);
    return i < this.count && this.compareAt(i, key) === 0 ? i : -1;
  }

  /** Record i's key, compared with `key` in byte order (= compareKeys order). */
  compareAt(i: number, key: KeyBytes): number {
    let p = this.recordStart(i);
    const buf = this.buf;
    let n = buf[p++]!;
    if (n >= 0x80) {
      const r = new ByteReader(buf, p - 1);
      n = r.varint();
      p = r.pos;
    }
    const k = key.bytes;
    const m = n < key.length ? n : key.length;
    for (let j = 0; j < m; j++) {
      const d = buf[p + j]! - k[j]!;
      if (d !== 0) return d;
    }
    return n - key.length;
  }

  /** Whether record i's key is the UTF-8 bytes `bytes[start, start + n)`. */
  keyIs(i: number, bytes: Uint8Array, start: number, n: number): boolean {
    const r = this.readerAt(i);
    if (r.varint() !== n) return false;
    const buf = this.buf;
    const p = r.pos;
    for (let j = 0; j < n; j++) if (buf[p + j] !== bytes[start + j]) return false;
    return true;
  }

  keyAt(i: number): string {
    return this.readerAt(i).string();
  }

  /** Record i, decoded: a new object each call, with its own copy of the value. */
  recordAt(i: number): StoredRecord {
    return readStoredRecord(this.readerAt(i));
  }

  /** A reader at record i's first byte (the shared one when the records are in memory). */
  private readerAt(i: number): ByteReader {
    const p = this.recordStart(i);
    if (this.window !== null) return new ByteReader(this.buf, p);
    const r = this.reader;
    r.pos = p;
    return r;
  }

  /** Record i's modRevision, read in place. */
  modRevisionAt(i: number): number {
    const r = this.headOf(i);
    return r.varint();
  }

  /** The length of record i's value, read in place. */
  valueLengthAt(i: number): number {
    const r = this.headOf(i);
    r.varint(); // modRevision
    r.varint(); // lease
    return r.varint();
  }

  /** The shared reader, at record i's modRevision. */
  private headOf(i: number): ByteReader {
    const r = this.readerAt(i);
    const keyLength = r.varint();
    r.pos += keyLength;
    r.varint(); // createIndex
    r.varint(); // modIndex
    r.varint(); // version
    r.varint(); // createRevision
    return r;
  }

  /** Record i's encoded bytes (a view: through a window, good until this table's next read), to be copied into a snapshot as they are. */
  rawAt(i: number): Uint8Array {
    const p = this.recordStart(i);
    return this.buf.subarray(p, p + this.offsets[i + 1]! - this.offsets[i]!);
  }
}

/** What scanning a snapshot's records found, beside the table. */
export interface BaseScan {
  readonly table: BaseTable;
  /** Where the records end in the buffer. */
  readonly end: number;
  /** Σ over the records of the key's UTF-8 length plus the value's length. */
  readonly keyValueBytes: number;
  /** [key, lease] of every record attached to a lease, in key order. */
  readonly leased: readonly (readonly [string, number])[];
  /** The records by modRevision from `indexFrom` on, if the scan was asked for it and the range is small enough; else null. */
  readonly byRevision: RevisionIndex | null;
}

/**
 * Where the record with each modRevision from `from` on is: `slots[modRevision - from]` is its
 * position + 1, 0 if no record has that modRevision, -1 if several do (a transaction's).
 */
export interface RevisionIndex {
  readonly from: number;
  readonly slots: Int32Array;
  /**
   * For a base read through a window: the key and value length of the records slots point to,
   * held in memory, so that a history's check of each current record (snapshot.ts, scanEventsInSlices)
   * reads nothing from the file (~100,000 random reads at 1M keys). Null for a base in memory.
   */
  readonly held: HeldRecords | null;
}

/**
 * The keys and value lengths of the records a revision index may point to, by record position,
 * added in increasing position: its memory follows those records (the history's span at most),
 * not the revision range, which a crafted count could make as large as the snapshot.
 */
export class HeldRecords {
  private bytes = new Uint8Array(1024);
  private at = 0;
  private size = 0;
  private records = new Float64Array(256);
  private starts = new Int32Array(256);
  private lengths = new Int32Array(256);
  private valueLengths = new Int32Array(256);

  /** Record `i` (after every one added before) has the key `buf[start, start + n)` and a value of `valueLength` bytes. */
  add(i: number, buf: Uint8Array, start: number, n: number, valueLength: number): void {
    if (this.at + n > this.bytes.length) this.bytes = grown(this.bytes, this.at + n);
    if (this.size === this.records.length) {
      this.records = grown(this.records, this.size + 1);
      this.starts = grown(this.starts, this.size + 1);
      this.lengths = grown(this.lengths, this.size + 1);
      this.valueLengths = grown(this.valueLengths, this.size + 1);
    }
    const bytes = this.bytes;
    let at = this.at;
    const j = this.size++;
    this.records[j] = i;
    this.starts[j] = at;
    this.lengths[j] = n;
    this.valueLengths[j] = valueLength;
    for (let k = 0; k < n; k++) bytes[at++] = buf[start + k]!;
    this.at = at;
  }

  /** Record `i`'s value length if it was added with the key `buf[start, start + n)`; -1 otherwise. */
  valueLengthIf(i: number, buf: Uint8Array, start: number, n: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]! < i) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.size || this.records[lo] !== i) return -1;
    return compareRanges(this.bytes, this.starts[lo]!, this.lengths[lo]!, buf, start, n) === 0 ? this.valueLengths[lo]! : -1;
  }
}

/** `a` copied into one at least `need` long (twice as long, or more). */
function grown<T extends Uint8Array | Int32Array | Float64Array>(a: T, need: number): T {
  const out = new (a.constructor as new (n: number) => T)(Math.max(a.length * 2, need));
  out.set(a);
  return out;
}

/** A revision index is built only over a range of at most this many revisions per record (and a few more): its memory follows the records'. */
const REVISION_INDEX_SLOTS_PER_RECORD = 4;

/**
 * Indexes `count` records starting at `pos` in `buf`, checking each as a decoder would: lengths
 * within the data, keys valid UTF-8 and strictly increasing, revisions within the store's
 * (`revision`), varints in range. Allocates a string only for keys attached to a lease. Throws
 * KvError BAD_SNAPSHOT naming the record.
 */
export function scanBaseRecords(buf: Uint8Array, pos: number, count: number, revision: number): BaseScan {
  return runSlices(scanBaseRecordsInSlices(buf, pos, count, revision, Number.POSITIVE_INFINITY));
}

/** Runs a sliced computation to its end in one go. */
export function runSlices<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/**
 * A snapshot's bytes read through a window (a file: src/storage/file-window.ts) rather than held
 * in memory: `length` bytes, offsets into them as RecordWindow's.
 */
export interface WindowedBytes {
  readonly window: RecordWindow;
  readonly length: number;
  /** What a scan reads at a time (SCAN_READ_BYTES unless given: tests make records straddle reads). */
  readonly readBytes?: number;
}

/**
 * What a base read through a window knows of its keys without reading it: its fence (every
 * WINDOW_FENCE_STRIDE-th key) and a filter of them all. Built by whoever sees every key in order
 * (a restore's scan, the snapshot's encoder), so that no pass over the file builds them after
 * (~300 MB of reads at 1M keys).
 */
export interface BaseKeys {
  readonly fence: Uint8Array;
  readonly fenceStarts: Uint32Array;
  readonly filter: KeyFilter;
}

/** Builds BaseKeys from every key of a base, in order. */
export class BaseKeysBuilder {
  private fence: Uint8Array;
  private readonly starts: Uint32Array;
  private readonly filter: KeyFilter;
  private at = 0;
  private next = 0;

  constructor(private readonly count: number) {
    const n = Math.ceil(count / WINDOW_FENCE_STRIDE);
    this.starts = new Uint32Array(n + 1);
    this.fence = new Uint8Array(Math.max(64, n * 24));
    this.filter = new KeyFilter(count);
  }

  /** The next record's key: the UTF-8 bytes `buf[start, start + n)`. */
  add(buf: Uint8Array, start: number, n: number): void {
    this.filter.add(buf, start, n);
    const i = this.next++;
    if (i % WINDOW_FENCE_STRIDE !== 0) return;
    let at = this.at;
    if (at + n > this.fence.length) this.fence = grown(this.fence, at + n);
    const fence = this.fence;
    this.starts[i / WINDOW_FENCE_STRIDE] = at;
    for (let j = 0; j < n; j++) fence[at++] = buf[start + j]!;
    this.at = at;
  }

  /** The next record's key, from the record as encoded (its key's length, a varint, then its bytes). */
  addRecord(record: Uint8Array): void {
    const r = new ByteReader(record);
    const n = r.varint();
    this.add(record, r.pos, n);
  }

  finish(): BaseKeys {
    if (this.next !== this.count) throw new Error(`a base of ${this.count} keys given ${this.next}`);
    this.starts[this.starts.length - 1] = this.at;
    return { fence: this.fence.subarray(0, this.at), fenceStarts: this.starts, filter: this.filter };
  }
}

/** What a scan through a window reads at a time: records that straddle its end are read again from their start. */
export const SCAN_READ_BYTES = 1 << 20;
/**
 * What a record takes past its key at most, before its value: six varints and the value's
 * length, 8 bytes each at most (ByteReader.varint). With this much past a key in view, a scan
 * reads them without running off the view.
 */
const RECORD_HEAD_TAIL_BYTES = 7 * 8;

/**
 * scanBaseRecords, pausing (a `yield`) after every `slice` records: a restore spread over turns of
 * the loop. `data` is the snapshot's bytes in memory, or read through a window: then the records
 * are read a piece at a time (SCAN_READ_BYTES, or a record's size if larger), the table reads
 * them through the same window, and a filter of their keys answers lookups of keys it does not
 * hold (key-filter.ts).
 */
export function* scanBaseRecordsInSlices(data: Uint8Array | WindowedBytes, pos: number, count: number, revision: number, slice: number, indexFrom = -1): Generator<void, BaseScan, void> {
  const window = data instanceof Uint8Array ? null : data.window;
  const readBytes = data instanceof Uint8Array ? 0 : Math.max(1, data.readBytes ?? SCAN_READ_BYTES);
  const dataLength = data.length;
  // Every record takes at least 8 bytes: refuse a count the bytes cannot hold before allocating.
  if (count * 8 > dataLength - pos) throw new KvError('BAD_SNAPSHOT', `key count ${count} exceeds the data`);
  const offsets = new Float64Array(count + 1);
  // The records a kept history may name as current (modRevision ≥ indexFrom), by modRevision.
  const span = revision - indexFrom + 1;
  const slots = indexFrom >= 0 && span <= REVISION_INDEX_SLOTS_PER_RECORD * count + 1024 ? new Int32Array(span) : null;
  const held = slots !== null && window !== null ? new HeldRecords() : null;
  const keys = window === null ? null : new BaseKeysBuilder(count);
  const leased: [string, number][] = [];
  // The bytes in view are data's [viewFrom, viewTo), at view[0, viewTo - viewFrom): all of them
  // in memory, else what the window read last.
  let view = data instanceof Uint8Array ? data : new Uint8Array(0);
  let viewFrom = 0;
  let viewTo = data instanceof Uint8Array ? dataLength : 0;
  let r = new ByteReader(view, pos);
  let keyValueBytes = 0;
  // The previous record's key: in view, or (once the view moved on) in `saved`.
  let prev = view;
  let prevStart = -1;
  let prevLength = 0;
  const saved = new KeyBytes();
  /** Views data's [from, at least `to`), from the window; the previous key is kept if it leaves the view. */
  const read = (from: number, to: number): void => {
    if (prevStart >= 0 && prev === view) {
      prev = saved.setBytes(view, prevStart, prevLength).bytes;
      prevStart = 0;
    }
    const end = Math.min(dataLength, Math.max(to, from + readBytes));
    const at = window!.load(from, end);
    view = window!.buf.subarray(at, at + end - from);
    viewFrom = from;
    viewTo = end;
    r = new ByteReader(view, 0);
  };
  if (window !== null && count > 0) read(pos, pos);
  let budget = slice;
  for (let i = 0; i < count; i++) {
    if (--budget <= 0) {
      yield;
      budget = slice;
    }
    // Through a window, a record's head (its key's length) is always in view.
    if (window !== null && viewTo < dataLength && viewTo - viewFrom - r.pos < 8) read(viewFrom + r.pos, 0);
    const start = viewFrom + r.pos;
    offsets[i] = start;
    const keyLength = r.varint();
    const keyStart = r.pos;
    if (keyLength > dataLength - viewFrom - keyStart) throw new KvError('BAD_SNAPSHOT', `record ${i}'s key runs past the data`);
    if (window !== null && viewTo < dataLength && viewFrom + keyStart + keyLength + RECORD_HEAD_TAIL_BYTES > viewTo) {
      // Its key and head are not all in view: read them again from the record's start.
      read(start, viewFrom + keyStart + keyLength + RECORD_HEAD_TAIL_BYTES);
      i--;
      continue;
    }
    checkUtf8(view, keyStart, keyLength, i);
    if (prevStart >= 0 && compareRanges(prev, prevStart, prevLength, view, keyStart, keyLength) >= 0) {
      throw new KvError('BAD_SNAPSHOT', 'snapshot keys are not in strictly increasing order');
    }
    r.pos = keyStart + keyLength;
    r.varint(); // createIndex
    r.varint(); // modIndex
    r.varint(); // version
    const createRevision = r.varint();
    const modRevision = r.varint();
    const lease = r.varint();
    if (modRevision > revision || createRevision > modRevision) throw new KvError('BAD_SNAPSHOT', `record ${i} has revisions beyond the store's`);
    const valueLength = r.varint();
    if (valueLength > dataLength - viewFrom - r.pos) throw new KvError('BAD_SNAPSHOT', `record ${i}'s value runs past the data`);
    // The record is checked: nothing above is done twice. Its value is skipped, not read, so it
    // may run past the view: the next record's head is then read anew.
    prev = view;
    prevStart = keyStart;
    prevLength = keyLength;
    if (slots !== null && modRevision >= indexFrom) {
      const at = modRevision - indexFrom;
      slots[at] = slots[at] === 0 ? i + 1 : -1;
      held?.add(i, view, keyStart, keyLength, valueLength);
    }
    keys?.add(view, keyStart, keyLength);
    r.pos += valueLength;
    keyValueBytes += keyLength + valueLength;
    if (lease !== 0) leased.push([new ByteReader(view, start - viewFrom).string(), lease]);
  }
  const end = viewFrom + r.pos;
  offsets[count] = count === 0 ? pos : end;
  const table = window === null ? new BaseTable(data as Uint8Array, offsets, count) : new BaseTable(window.buf, offsets, count, window, keys!.finish());
  return { table, end: count === 0 ? pos : end, keyValueBytes, leased, byRevision: slots === null ? null : { from: indexFrom, slots, held } };
}

/** Byte order of `a[as, as + an)` and `b[bs, bs + bn)`. */
function compareRanges(a: Uint8Array, as: number, an: number, b: Uint8Array, bs: number, bn: number): number {
  const m = an < bn ? an : bn;
  for (let j = 0; j < m; j++) {
    const d = a[as + j]! - b[bs + j]!;
    if (d !== 0) return d;
  }
  return an - bn;
}

/** Byte order of two ranges of `buf`. */
export function compareBytes(buf: Uint8Array, a: number, an: number, b: number, bn: number): number {
  return compareRanges(buf, a, an, buf, b, bn);
}

/** ASCII is checked here; anything else by the strict decoder (what ByteReader.string() would refuse). */
export function isValidUtf8(buf: Uint8Array, start: number, n: number): boolean {
  for (let j = start; j < start + n; j++) {
    if (buf[j]! >= 0x80) {
      try {
        strictDecoder.decode(buf.subarray(start, start + n));
      } catch {
        return false;
      }
      return true;
    }
  }
  return true;
}

function checkUtf8(buf: Uint8Array, start: number, n: number, i: number): void {
  if (!isValidUtf8(buf, start, n)) throw new KvError('BAD_SNAPSHOT', `record ${i}'s key is not valid UTF-8`);
}
