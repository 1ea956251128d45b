// The snapshot format: the whole key-value state (records, leases, history), the idempotency
// table and the applied index in one byte string. The storage layer checksums snapshot files, so
// this format carries only a magic, a version byte and exact lengths (a decoder that runs out of
// bytes, or has bytes left over, rejects the snapshot).
//
//   snapshot = "RKVS" version:u8(=2) appliedIndex:varint logClock:f64be
//              revision:varint compactRevision:varint
//              keyCount:varint record*keyCount        (in strictly increasing key order)
//              leaseCount:varint lease*leaseCount     (in increasing id order)
//              eventCount:varint event*eventCount     (history: in revision order)
//              idemCount:varint idem*idemCount        (oldest first)
//   record   = key:str createIndex modIndex version createRevision modRevision lease value:bytes
//   lease    = id:varint ttlSeconds:varint
//   event    = revision:varint key:str flags:u8 [record] [prev:record]
//              flags 0x01 put (else delete) | 0x02 its record is the key's current record (not
//              repeated) | 0x04 prev follows | 0x08 prev is the record of the key's previous event
//              | 0x10 a later event's prev is this event's record (so a decoder keeps it at hand)
//              (a put's record follows unless 0x02; with neither 0x04 nor 0x08 prev is null)
//   idem     = idempotencyKey:str time:f64be result    (result: see result.ts)
//
// Records come in key order, so two replicas with equal state write byte-identical snapshots,
// and restore rebuilds the ordered index without sorting. Each record is written once: the
// history refers to current records and to the previous event's record instead of repeating
// them. A snapshot may be written in slices (SnapshotEncoder.step) from state captured at one
// moment: the bytes are the same. Format 1 (before revisions) is refused with a clear error.
import { BaseKeysBuilder, BaseTable, KeyBytes, compareBytes, isValidUtf8, runSlices, scanBaseRecordsInSlices, type RevisionIndex, type WindowedBytes } from './base-table.js';
import { ByteReader, ByteWriter, SpillingByteWriter, stringSize, utf8At, varintSize } from './bytes.js';
import type { ByteWindow, SnapshotWriter } from '../raft/types.js';
import { KvError } from './errors.js';
import { HISTORY_EVENT_OVERHEAD_BYTES, type HistoryEvent } from './history.js';
import type { KvResult } from './result.js';
import { IDEMPOTENCY_RECORD_OVERHEAD_BYTES, keyHash, type EncodedIdempotency } from './idempotency.js';
import { readResult, resultSize, writeResult } from './result.js';
import { readStoredRecord, storedRecordSize, writeStoredRecord, type StoredRecord } from './stored-record.js';

const MAGIC = [0x52, 0x4b, 0x56, 0x53]; // "RKVS"
/**
 * What writing one record or idempotency record costs beyond its bytes, in bytes of a step's
 * budget (a lookup, a cache miss or two, the calls): small records still make short slices.
 */
const ITEM_COST_BYTES = 256;

/** The same for sizing one idempotency record. */
const SIZE_COST_BYTES = 64;
/** The same for sizing one history event: two or three map operations, measured ~1 µs. */
const EVENT_SIZE_COST_BYTES = 384;
export const SNAPSHOT_VERSION = 2;

const EV_PUT = 0x01;
const EV_CURRENT = 0x02;
const EV_PREV = 0x04;
const EV_PREV_CHAIN = 0x08;
const EV_REFERENCED = 0x10;

export interface SnapshotState {
  readonly appliedIndex: number;
  readonly logClock: number;
  readonly revision: number;
  readonly compactRevision: number;
  /** The records, left in the snapshot's bytes (base-table.ts). */
  readonly base: BaseTable;
  /** Σ over the records of the key's UTF-8 length plus the value's length. */
  readonly keyValueBytes: number;
  /** [key, lease] of every record attached to a lease, in key order. */
  readonly leased: readonly (readonly [string, number])[];
  /**
   * The records the history refers to as current, decoded once: the store must hand out these
   * same objects for those keys (a history event and the store share a key's current record).
   */
  readonly current: Map<string, StoredRecord>;
  /** The keys of `current`, in key order. */
  readonly currentKeys: readonly string[];
  /** [id, ttlSeconds] in increasing id order. */
  readonly leases: readonly (readonly [number, number])[];
  /**
   * In revision order; current records are the same objects as in `current`. Empty when the
   * history was left encoded (`encodedHistory`), and so are `current` and `currentKeys`.
   */
  readonly events: HistoryEvent[];
  /** The history still in the snapshot's bytes, checked, to be decoded later (decodeSnapshotInSlices' `lazy`); else null. */
  readonly encodedHistory: EncodedHistory | null;
  /** Each key's first result, oldest first (a Map iterates in insertion order), each key once; the caller may keep it. */
  readonly idempotency: Map<string, KvResult>;
  /** When each of them was applied (the log clock then), in the same order. */
  readonly idempotencyTimes: number[];
  /** The idempotency records left in the snapshot's bytes, checked (`lazy`); `idempotency` is then empty. Else null. */
  readonly encodedIdempotency: EncodedIdempotency | null;
}

/**
 * A snapshot's history left in its bytes, already checked as a decoder checks it (so decoding it
 * later cannot fail), with what the store needs before it is decoded: each event's revision, and
 * the running sum of what the events cost in History's `bytes`.
 */
export interface EncodedHistory {
  readonly data: Uint8Array;
  /** Where the first event begins in `data`. */
  readonly start: number;
  readonly count: number;
  readonly compactRevision: number;
  readonly revision: number;
  /** `revisions[i]`: event i's revision. */
  readonly revisions: Float64Array;
  /** `costs[i]`: Σ historyEventBytes over events [0, i); `costs[count]` the whole. */
  readonly costs: Float64Array;
}

/** What a snapshot captures at the moment it begins (KvStateMachine.beginSnapshot). */
export interface SnapshotSource {
  readonly appliedIndex: number;
  readonly logClock: number;
  readonly revision: number;
  readonly compactRevision: number;
  /** How many keys there were. */
  readonly keyCount: number;
  /** Their records as they stood, in key order. */
  readonly records: RecordCursor;
  /** Whether `rec` was a key's current record as things stood (decides how an event refers to it). */
  readonly isCurrent: (rec: StoredRecord) => boolean;
  /** Σ storedRecordSize over the records: their exact encoded size, kept up to date by the store. */
  readonly recordBytes: number;
  readonly leases: readonly (readonly [number, number])[];
  /** The history as it stood: `events[0, eventCount)`. */
  readonly events: readonly HistoryEvent[];
  readonly eventCount: number;
  /** The idempotency table oldest first: keys, the time each was applied, and each one's result. */
  readonly idemKeys: readonly string[];
  readonly idemTimes: readonly number[];
  readonly idemResult: (key: string) => KvResult;
}

/** Records in key order, each written as writeStoredRecord writes it (or copied, already so written). */
export interface RecordCursor {
  /** Writes the next record, its key added to `keys` if given; false when there is none left. */
  writeNext(w: ByteWriter, keys: BaseKeysBuilder | null): boolean;
}

/**
 * How event `i` refers to its record and its previous record, given the position of each key's
 * latest event so far (`last`); marks the event it chains to as referenced in `flagsOf`.
 */
function eventFlags(events: readonly HistoryEvent[], i: number, last: Map<string, number>, flagsOf: Uint8Array, isCurrent: (rec: StoredRecord) => boolean): number {
  const ev = events[i]!;
  let flags = 0;
  if (ev.record !== null) flags |= EV_PUT | (isCurrent(ev.record) ? EV_CURRENT : 0);
  const before = last.get(ev.key);
  if (before !== undefined && events[before]!.record === ev.prev) {
    flags |= EV_PREV_CHAIN;
    flagsOf[before]! |= EV_REFERENCED;
  } else if (ev.prev !== null) flags |= EV_PREV;
  last.set(ev.key, i);
  return flags;
}

function eventSize(ev: HistoryEvent, flags: number): number {
  let n = varintSize(ev.revision) + stringSize(ev.key) + 1;
  if ((flags & (EV_PUT | EV_CURRENT)) === EV_PUT) n += storedRecordSize(ev.record!);
  if ((flags & EV_PREV) !== 0) n += storedRecordSize(ev.prev!);
  return n;
}

/**
 * Writes a snapshot of state captured at one moment (SnapshotSource), in slices (step()) or at
 * once. So the output is allocated once, at its size, and written front to back: no growing, no
 * copy. Each slice does about `maxBytes` of work: first it sizes the history and the
 * idempotency records (the records' size the store already knows), then writes records, leases,
 * events and idempotency records. A wrapper's header (`prefix`) may go in front, so the wrapper
 * need not copy the whole snapshot to put it there. Given a SnapshotWriter (`sink`), it writes
 * there instead, through buffers of the sink's chunkBytes that come back once written (a
 * snapshot of hundreds of MB passes through a few MB of memory), pauses while the sink is
 * behind, and is complete once the sink has written everything.
 */
export class SnapshotEncoder {
  private w: ByteWriter | null = null;
  /** The sink's writer, when there is a sink. */
  private spilling: SpillingByteWriter | null = null;
  private isEncoded = false;
  private size: number;
  /** Phase 1: events sized, then idempotency records sized. */
  private sizedEvents = 0;
  private sizedIdem = 0;
  private sizingLast = new Map<string, number>();
  /** Each event's flags, decided while sizing (the references need the whole history seen). */
  private readonly flagsOf: Uint8Array;
  /** Phase 2: the section being written (0 records, 1 events, 2 idempotency) and the next item in it. */
  private section = 0;
  private next = 0;
  private output: Uint8Array | null = null;
  /** Where each record begins in the output, and where the last ends: the next base's index. */
  private readonly recordOffsets: Float64Array;
  /**
   * The records' keys, when they go to a sink: the next base reads them through its window, and
   * answers lookups of keys it does not hold from this filter without a read (key-filter.ts).
   */
  private readonly keys: BaseKeysBuilder | null;

  constructor(
    private readonly src: SnapshotSource,
    private readonly prefix: Uint8Array | null = null,
    private readonly sink: SnapshotWriter | null = null,
  ) {
    let n = (prefix?.length ?? 0) + MAGIC.length + 1 + varintSize(src.appliedIndex) + 8 + varintSize(src.revision) + varintSize(src.compactRevision);
    n += varintSize(src.keyCount) + src.recordBytes;
    n += varintSize(src.leases.length);
    for (const [id, ttl] of src.leases) n += varintSize(id) + varintSize(ttl);
    n += varintSize(src.eventCount) + varintSize(src.idemKeys.length);
    this.size = n;
    this.flagsOf = new Uint8Array(src.eventCount);
    this.recordOffsets = new Float64Array(src.keyCount + 1);
    this.keys = sink === null ? null : new BaseKeysBuilder(src.keyCount);
  }

  /** Does about `maxBytes` more of the work (at least one item's); true once the snapshot is complete. */
  step(maxBytes: number): boolean {
    if (this.output !== null) return true;
    // Encoded into the sink: complete once it has written everything (it throws a write's error).
    if (this.isEncoded) return this.sink!.isWritten();
    const src = this.src;
    let budget = maxBytes;
    if (this.w === null) {
      while (this.sizedEvents < src.eventCount) {
        const i = this.sizedEvents++;
        const flags = eventFlags(src.events, i, this.sizingLast, this.flagsOf, src.isCurrent);
        this.flagsOf[i]! |= flags;
        const n = eventSize(src.events[i]!, flags);
        this.size += n;
        budget -= n + EVENT_SIZE_COST_BYTES;
        if (budget <= 0) return false;
      }
      this.sizingLast.clear();
      while (this.sizedIdem < src.idemKeys.length) {
        const key = src.idemKeys[this.sizedIdem++]!;
        const n = stringSize(key) + 8 + resultSize(src.idemResult(key));
        this.size += n;
        budget -= n + SIZE_COST_BYTES;
        if (budget <= 0 && this.sizedIdem < src.idemKeys.length) return false;
      }
      let w: ByteWriter;
      if (this.sink !== null) {
        this.sink.begin(this.size);
        w = this.spilling = new SpillingByteWriter(this.sink, Math.max(1, Math.min(this.sink.chunkBytes, this.size)));
      } else w = new ByteWriter(this.size);
      this.w = w;
      if (this.prefix !== null) w.raw(this.prefix);
      for (const b of MAGIC) w.u8(b);
      w.u8(SNAPSHOT_VERSION);
      w.varint(src.appliedIndex);
      w.f64(src.logClock);
      w.varint(src.revision);
      w.varint(src.compactRevision);
      w.varint(src.keyCount);
    }
    const w = this.w;
    const sink = this.sink;
    for (;;) {
      const start = w.offset;
      if (this.section === 0) {
        if (this.next < src.keyCount) {
          this.recordOffsets[this.next++] = w.offset;
          if (!src.records.writeNext(w, this.keys)) throw new Error(`snapshot records ended at ${this.next - 1} of ${src.keyCount}`);
        } else {
          this.recordOffsets[src.keyCount] = w.offset;
          if (src.records.writeNext(w, null)) throw new Error(`snapshot records beyond the ${src.keyCount} counted`);
          w.varint(src.leases.length);
          for (const [id, ttl] of src.leases) {
            w.varint(id);
            w.varint(ttl);
          }
          w.varint(src.eventCount);
          this.section = 1;
          this.next = 0;
        }
      } else if (this.section === 1) {
        if (this.next < src.eventCount) {
          const ev = src.events[this.next]!;
          const flags = this.flagsOf[this.next++]!;
          w.varint(ev.revision);
          w.string(ev.key);
          w.u8(flags);
          if ((flags & (EV_PUT | EV_CURRENT)) === EV_PUT) writeStoredRecord(w, ev.record!);
          if ((flags & EV_PREV) !== 0) writeStoredRecord(w, ev.prev!);
        } else {
          w.varint(src.idemKeys.length);
          this.section = 2;
          this.next = 0;
        }
      } else {
        if (this.next >= src.idemKeys.length) break;
        const i = this.next++;
        const key = src.idemKeys[i]!;
        w.string(key);
        w.f64(src.idemTimes[i]!);
        writeResult(w, src.idemResult(key));
      }
      budget -= w.offset - start + ITEM_COST_BYTES;
      // The disk is behind: wait for it (a later slice) rather than buffer the snapshot.
      if (budget <= 0 || (sink !== null && sink.isBehind)) return false;
    }
    if (w.offset !== this.size) throw new Error(`snapshot size mismatch: computed ${this.size}, wrote ${w.offset}`);
    if (this.spilling !== null) {
      this.spilling.spill();
      this.isEncoded = true;
      return sink!.isWritten();
    }
    this.output = w.finish();
    return true;
  }

  /** The snapshot, once step() returned true; null if it went to the sink. */
  get bytes(): Uint8Array | null {
    if (this.output === null && !this.isEncoded) throw new Error('the snapshot is not complete');
    return this.output;
  }

  /**
   * The records as written, as a base for the store (base-table.ts), once step() returned true:
   * in memory, or read back through the sink's window over what it wrote.
   */
  base(): { readonly table: BaseTable; readonly window: ByteWindow | null } {
    const bytes = this.bytes;
    if (bytes !== null) return { table: new BaseTable(bytes, this.recordOffsets, this.src.keyCount), window: null };
    if (this.src.keyCount === 0) return { table: new BaseTable(new Uint8Array(0), this.recordOffsets, 0), window: null };
    const window = this.sink!.window(0, this.size);
    return { table: new BaseTable(window.buf, this.recordOffsets, this.src.keyCount, window, this.keys!.finish()), window };
  }
}

/**
 * The records stay in `data` (SnapshotState.base): the caller must not change it afterwards. What
 * else is decoded copies its values out. Throws KvError BAD_SNAPSHOT.
 */
export function decodeSnapshot(data: Uint8Array): SnapshotState {
  return runSlices(decodeSnapshotInSlices(data, Number.POSITIVE_INFINITY));
}

/**
 * What decoding one item costs against a slice's budget, in base records: a base record is only
 * scanned (~0.1 µs), a history event is decoded into objects and strings (~3 µs, measured on a
 * 1M-key store), an idempotency record into a key and a result (~1.5 µs), a current key copied
 * out of the base (~0.3 µs). Counted alike, a slice of events held the loop ~100 ms.
 */
const EVENT_COST = 32;
const IDEMPOTENCY_COST = 16;
const CURRENT_KEY_COST = 4;

/** A snapshot's head (magic, version, indexes, clock, revisions, key count) takes at most this many bytes. */
const SNAPSHOT_HEAD_BYTES = 4 + 1 + 8 + 8 + 8 + 8 + 8;

/** A copy of bytes [start, end) read through the window. */
function windowBytes(data: WindowedBytes, start: number, end: number): Uint8Array {
  const at = data.window.load(start, end);
  return data.window.buf.slice(at, at + end - start);
}

/**
 * decodeSnapshot, pausing (a `yield`) after about every `slice` base records' worth of work (the
 * costs above), so that a large state (1M keys: ~0.5 s) is decoded over many turns of the loop,
 * a few ms each, while the node goes on (KvStateMachine.beginRestore). Nothing is shared until
 * it returns.
 */
export function* decodeSnapshotInSlices(data: Uint8Array | WindowedBytes, slice: number, lazy = false): Generator<void, SnapshotState, void> {
  try {
    // Through a window, the head is read into a buffer of its own, and so is what follows the
    // records (leases, history, idempotency table: a few MB to tens of MB) once they are scanned:
    // the history and the idempotency table, left encoded, are read from it later.
    let r = new ByteReader(data instanceof Uint8Array ? data : windowBytes(data, 0, Math.min(data.length, SNAPSHOT_HEAD_BYTES)));
    for (const b of MAGIC) if (r.u8() !== b) throw new KvError('BAD_SNAPSHOT', 'not a key-value snapshot (bad magic)');
    const version = r.u8();
    if (version === 1) {
      throw new KvError('BAD_SNAPSHOT', 'the snapshot is in format 1, written by a raftkv from before revisions; this version reads format 2 only');
    }
    if (version !== SNAPSHOT_VERSION) throw new KvError('BAD_SNAPSHOT', `unknown snapshot version ${version}`);
    const appliedIndex = r.varint();
    const logClock = r.f64();
    const revision = r.varint();
    const compactRevision = r.varint();
    if (compactRevision > revision) throw new KvError('BAD_SNAPSHOT', `compact revision ${compactRevision} is above the revision ${revision}`);
    const keyCount = r.varint();
    const scan = yield* scanBaseRecordsInSlices(data, r.pos, keyCount, revision, slice, lazy ? compactRevision : -1);
    let budget = slice;
    const base = scan.table;
    if (data instanceof Uint8Array) r.pos = scan.end;
    else r = new ByteReader(windowBytes(data, scan.end, data.length));
    const leaseCount = r.varint();
    if (leaseCount * 2 > r.remaining) throw new KvError('BAD_SNAPSHOT', `lease count ${leaseCount} exceeds the data`);
    const leases: [number, number][] = [];
    for (let i = 0; i < leaseCount; i++) {
      const id = r.varint();
      const ttl = r.varint();
      if (id < 1 || ttl < 1 || (i > 0 && id <= leases[i - 1]![0])) throw new KvError('BAD_SNAPSHOT', `lease ${i} is out of order or invalid`);
      leases.push([id, ttl]);
    }
    const eventCount = r.varint();
    if (eventCount * 4 > r.remaining) throw new KvError('BAD_SNAPSHOT', `event count ${eventCount} exceeds the data`);
    let events: HistoryEvent[] = [];
    let encodedHistory: EncodedHistory | null = null;
    const current = new Map<string, StoredRecord>();
    const currentAt: number[] = [];
    if (lazy) {
      encodedHistory = yield* scanEventsInSlices(r, eventCount, base, scan.byRevision, compactRevision, revision, slice);
    } else {
      const probe = new KeyBytes();
      // Each key's current record decoded once, for the history and the store alike.
      const resolveCurrent = (key: string): StoredRecord | null => {
        let record = current.get(key);
        if (record === undefined) {
          const at = base.indexOf(probe.set(key));
          if (at < 0) return null;
          current.set(key, (record = base.recordAt(at)));
          currentAt.push(at);
        }
        return record;
      };
      events = yield* decodeEventsInSlices(r, eventCount, compactRevision, revision, resolveCurrent, slice);
    }
    const idemCount = r.varint();
    if (idemCount * 10 > r.remaining) throw new KvError('BAD_SNAPSHOT', `idempotency count ${idemCount} exceeds the data`);
    // Straight into the Map the table keeps (IdempotencyTable.adopt): no pairs, no second Map.
    const idempotency = new Map<string, KvResult>();
    const idempotencyTimes: number[] = [];
    let encodedIdempotency: EncodedIdempotency | null = null;
    if (lazy) {
      encodedIdempotency = yield* scanIdempotencyInSlices(r, idemCount, slice);
    } else {
      let previousTime = -Infinity;
      for (let i = 0; i < idemCount; i++) {
        if ((budget -= IDEMPOTENCY_COST) <= 0) {
          yield;
          budget = slice;
        }
        const key = r.string();
        const time = r.f64();
        // The table's expiry relies on records being oldest first, each key once.
        if (idempotency.has(key) || !(time >= previousTime)) throw new KvError('BAD_SNAPSHOT', `idempotency record ${i} is duplicated or out of order`);
        previousTime = time;
        idempotency.set(key, readResult(r));
        idempotencyTimes.push(time);
      }
    }
    r.end();
    // In base order, which is key order: no string comparisons.
    const sortedAt = Float64Array.from(currentAt).sort();
    const currentKeys: string[] = new Array<string>(sortedAt.length);
    for (let i = 0; i < sortedAt.length; i++) {
      if ((budget -= CURRENT_KEY_COST) <= 0) {
        yield;
        budget = slice;
      }
      currentKeys[i] = base.keyAt(sortedAt[i]!);
    }
    return { appliedIndex, logClock, revision, compactRevision, base, keyValueBytes: scan.keyValueBytes, leased: scan.leased, current, currentKeys, leases, events, encodedHistory, idempotency, idempotencyTimes, encodedIdempotency };
  } catch (err) {
    if (err instanceof KvError && err.code !== 'BAD_SNAPSHOT') throw new KvError('BAD_SNAPSHOT', err.message);
    throw err;
  }
}

/**
 * Decodes `count` history events from `r` into objects, pausing (a `yield`) after about every
 * `slice` base records' worth of work. `resolveCurrent(key)` gives the record an event marked
 * current refers to (the key's record as of the snapshot), or null if there is none: the caller
 * decides where it comes from, so that the store and the history share it. Throws KvError
 * BAD_SNAPSHOT naming the event.
 */
function* decodeEventsInSlices(
  r: ByteReader,
  count: number,
  compactRevision: number,
  revision: number,
  resolveCurrent: (key: string) => StoredRecord | null,
  slice: number,
): Generator<void, HistoryEvent[], void> {
  const events: HistoryEvent[] = new Array<HistoryEvent>(count);
  /** The records of events a later one refers to (EV_REFERENCED), by key. */
  const last = new Map<string, StoredRecord | null>();
  let previousRevision = compactRevision;
  let budget = slice;
  for (let i = 0; i < count; i++) {
    if ((budget -= EVENT_COST) <= 0) {
      yield;
      budget = slice;
    }
    const rev = r.varint();
    const key = r.string();
    const flags = r.u8();
    if (rev < previousRevision || rev > revision || !areValidEventFlags(flags)) throw new KvError('BAD_SNAPSHOT', `history event ${i} is out of order or malformed`);
    previousRevision = rev;
    let record: StoredRecord | null = null;
    if ((flags & EV_CURRENT) !== 0) {
      record = resolveCurrent(key);
      if (record === null || record.modRevision !== rev) throw new KvError('BAD_SNAPSHOT', `history event ${i} refers to a current record that is not there`);
    } else if ((flags & EV_PUT) !== 0) {
      record = readStoredRecord(r);
      if (record.key !== key || record.modRevision !== rev) throw new KvError('BAD_SNAPSHOT', `history event ${i}'s record does not match it`);
    }
    let prev: StoredRecord | null = null;
    if ((flags & EV_PREV) !== 0) prev = readStoredRecord(r);
    else if ((flags & EV_PREV_CHAIN) !== 0) {
      if (!last.has(key)) throw new KvError('BAD_SNAPSHOT', `history event ${i} refers to a previous event that is not there`);
      prev = last.get(key)!;
    }
    if (prev !== null && prev.key !== key) throw new KvError('BAD_SNAPSHOT', `history event ${i}'s previous record is another key's`);
    if ((flags & EV_REFERENCED) !== 0) last.set(key, record);
    events[i] = { revision: rev, key, record, prev };
  }
  return events;
}

/** Known bits only; never both kinds of prev; current only for a put. */
function areValidEventFlags(flags: number): boolean {
  return (flags & ~0x1f) === 0 && (flags & (EV_PREV | EV_PREV_CHAIN)) !== (EV_PREV | EV_PREV_CHAIN) && (flags & (EV_PUT | EV_CURRENT)) !== EV_CURRENT;
}

/** Scanning one event costs about a base record's scan (no objects, no strings but a chained key). */
const EVENT_SCAN_COST = 2;

/**
 * Checks `count` history events at `r` exactly as decodeEventsInSlices would, without decoding
 * them: no event, record or value is made (a key becomes a string only where a later event
 * chains to it). Leaves `r` after the last event. Throws KvError BAD_SNAPSHOT naming the event,
 * with the messages decodeEventsInSlices would give.
 */
function* scanEventsInSlices(
  r: ByteReader,
  count: number,
  base: BaseTable,
  byRevision: RevisionIndex | null,
  compactRevision: number,
  revision: number,
  slice: number,
): Generator<void, EncodedHistory, void> {
  const data = r.buf;
  const start = r.pos;
  const revisions = new Float64Array(count);
  const costs = new Float64Array(count + 1);
  /** The value length of the record of each event a later one chains to (-1: a deletion), by key. */
  const last = new Map<string, number>();
  const probe = new KeyBytes();
  let previousRevision = compactRevision;
  let budget = slice;
  for (let i = 0; i < count; i++) {
    if ((budget -= EVENT_SCAN_COST) <= 0) {
      yield;
      budget = slice;
    }
    const rev = r.varint();
    const keyStart = skipString(r);
    const keyLength = r.pos - keyStart;
    const flags = r.u8();
    if (rev < previousRevision || rev > revision || !areValidEventFlags(flags)) throw new KvError('BAD_SNAPSHOT', `history event ${i} is out of order or malformed`);
    previousRevision = rev;
    /** The value length of the event's record; -1 for a deletion. */
    let recordLength = -1;
    if ((flags & EV_CURRENT) !== 0) {
      // The base's record of that modRevision, if it is the only one and of this key; else by key.
      const s = byRevision === null || rev < byRevision.from ? -1 : rev - byRevision.from;
      const slot = s < 0 ? -1 : byRevision!.slots[s]!;
      // Held in memory (a base read through a window): its modRevision is `rev` by its slot.
      const heldLength = slot > 0 ? (byRevision!.held?.valueLengthIf(slot - 1, data, keyStart, keyLength) ?? -1) : -1;
      if (heldLength >= 0) recordLength = heldLength;
      else {
        const at = slot > 0 && base.keyIs(slot - 1, data, keyStart, keyLength) ? slot - 1 : slot === 0 ? -1 : base.indexOf(probe.setBytes(data, keyStart, keyLength));
        if (at < 0 || base.modRevisionAt(at) !== rev) throw new KvError('BAD_SNAPSHOT', `history event ${i} refers to a current record that is not there`);
        recordLength = base.valueLengthAt(at);
      }
    } else if ((flags & EV_PUT) !== 0) {
      const rec = skipStoredRecord(r);
      if (compareBytes(data, rec.keyStart, rec.keyLength, keyStart, keyLength) !== 0 || rec.modRevision !== rev) throw new KvError('BAD_SNAPSHOT', `history event ${i}'s record does not match it`);
      recordLength = rec.valueLength;
    }
    let prevLength = -1;
    let key: string | null = null;
    if ((flags & EV_PREV) !== 0) {
      const rec = skipStoredRecord(r);
      prevLength = rec.valueLength;
      if (compareBytes(data, rec.keyStart, rec.keyLength, keyStart, keyLength) !== 0) throw new KvError('BAD_SNAPSHOT', `history event ${i}'s previous record is another key's`);
    } else if ((flags & EV_PREV_CHAIN) !== 0) {
      key = utf8At(data, keyStart, keyLength);
      const chained = last.get(key);
      if (chained === undefined) throw new KvError('BAD_SNAPSHOT', `history event ${i} refers to a previous event that is not there`);
      prevLength = chained;
    }
    if ((flags & EV_REFERENCED) !== 0) last.set(key ?? utf8At(data, keyStart, keyLength), recordLength);
    revisions[i] = rev;
    // historyEventBytes: the key's UTF-8 bytes, the value the event replaced, the overhead.
    costs[i + 1] = costs[i]! + keyLength + (prevLength < 0 ? 0 : prevLength) + HISTORY_EVENT_OVERHEAD_BYTES;
  }
  return { data, start, count, compactRevision, revision, revisions, costs };
}

/**
 * Skips a string at `r` as ByteReader.string() reads it, checked alike (within the data, valid
 * UTF-8) but not made: returns where its bytes begin; they end at `r.pos`.
 */
function skipString(r: ByteReader): number {
  const n = r.varint();
  const start = r.pos;
  if (n > r.remaining) throw new KvError('BAD_COMMAND', `truncated: needed ${n} bytes at offset ${start}`);
  r.pos += n;
  if (!isValidUtf8(r.buf, start, n)) throw new KvError('BAD_COMMAND', `invalid UTF-8 at offset ${start}`);
  return start;
}

/** Where a record's key lies, its modRevision and value length, and `r` past it: what readStoredRecord would read, checked alike. */
function skipStoredRecord(r: ByteReader): { keyStart: number; keyLength: number; modRevision: number; valueLength: number } {
  const keyStart = skipString(r);
  const keyLength = r.pos - keyStart;
  r.varint(); // createIndex
  r.varint(); // modIndex
  r.varint(); // version
  r.varint(); // createRevision
  const modRevision = r.varint();
  r.varint(); // lease
  const valueLength = r.bytes().length;
  return { keyStart, keyLength, modRevision, valueLength };
}

/**
 * The events of `h` decoded (decodeEventsInSlices), a slice per step: what a store restored with
 * its history left encoded runs beside serving. `resolveCurrent` as there.
 */
export function decodeEncodedHistory(h: EncodedHistory, resolveCurrent: (key: string) => StoredRecord | null, slice: number): Generator<void, HistoryEvent[], void> {
  return decodeEventsInSlices(new ByteReader(h.data, h.start), h.count, h.compactRevision, h.revision, resolveCurrent, slice);
}

/** Scanning one idempotency record: its result is decoded to be checked, and dropped. */
const IDEMPOTENCY_SCAN_COST = 8;

/**
 * Checks `count` idempotency records at `r` as the decoder does (keys valid UTF-8 and each once,
 * times oldest first, results well-formed), leaving them in the bytes: their keys are hashed into
 * an index (EncodedIdempotency), no key string is made, no result kept. Throws KvError
 * BAD_SNAPSHOT with the decoder's messages.
 */
function* scanIdempotencyInSlices(r: ByteReader, count: number, slice: number): Generator<void, EncodedIdempotency, void> {
  const data = r.buf;
  const keyStarts = new Float64Array(count);
  const keyLengths = new Int32Array(count);
  const resultStarts = new Float64Array(count);
  const times = new Float64Array(count);
  const costs = new Float64Array(count);
  let size = 16;
  while (size < count * 2) size *= 2;
  const slots = new Int32Array(size);
  const hashes = new Int32Array(size);
  const mask = size - 1;
  const seed = (Math.random() * 0x100000000) >>> 0;
  let previousTime = -Infinity;
  let budget = slice;
  for (let i = 0; i < count; i++) {
    if ((budget -= IDEMPOTENCY_SCAN_COST) <= 0) {
      yield;
      budget = slice;
    }
    const keyStart = skipString(r);
    const keyLength = r.pos - keyStart;
    const time = r.f64();
    const h = keyHash(data, keyStart, keyLength, seed) | 0;
    let s = h & mask;
    for (; slots[s] !== 0; s = (s + 1) & mask) {
      const j = slots[s]! - 1;
      if (hashes[s] === h && compareBytes(data, keyStarts[j]!, keyLengths[j]!, keyStart, keyLength) === 0) throw new KvError('BAD_SNAPSHOT', `idempotency record ${i} is duplicated or out of order`);
    }
    // The table's expiry relies on records being oldest first, each key once.
    if (!(time >= previousTime)) throw new KvError('BAD_SNAPSHOT', `idempotency record ${i} is duplicated or out of order`);
    previousTime = time;
    slots[s] = i + 1;
    hashes[s] = h;
    keyStarts[i] = keyStart;
    keyLengths[i] = keyLength;
    times[i] = time;
    resultStarts[i] = r.pos;
    // What IdempotencyTable counts for the record (idempotencyRecordBytes).
    costs[i] = keyLength + resultSize(readResult(r)) + IDEMPOTENCY_RECORD_OVERHEAD_BYTES;
  }
  return { data, count, keyStarts, keyLengths, resultStarts, times, costs, slots, hashes, seed };
}
