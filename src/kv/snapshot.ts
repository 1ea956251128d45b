// The snapshot format: the whole key-value state, the idempotency table and the applied index in
// one byte string. The storage layer checksums snapshot files, so this format carries only a
// magic, a version byte and exact lengths (a decoder that runs out of bytes, or has bytes left
// over, rejects the snapshot).
//
//   snapshot = "RKVS" version:u8(=1) appliedIndex:varint logClock:f64be
//              keyCount:varint record*keyCount        (in strictly increasing key order)
//              idemCount:varint idem*idemCount        (oldest first)
//   record   = key:str createIndex:varint modIndex:varint version:varint value:bytes
//   idem     = idempotencyKey:str time:f64be result    (result: see result.ts)
//
// Records come in key order, so two replicas with equal state write byte-identical snapshots,
// and restore rebuilds the ordered index without sorting. A snapshot may be written in slices
// (SnapshotEncoder.step) from state captured at one moment: the bytes are the same.
import { ByteReader, ByteWriter, stringSize, varintSize } from './bytes.js';
import { KvError } from './errors.js';
import type { IdempotencyRecord } from './idempotency.js';
import { readResult, resultSize, writeResult } from './result.js';
import { readStoredRecord, writeStoredRecord, type StoredRecord } from './stored-record.js';

const MAGIC = [0x52, 0x4b, 0x56, 0x53]; // "RKVS"
/**
 * What writing one record or idempotency record costs beyond its bytes, in bytes of a step's
 * budget (a lookup, a cache miss or two, the calls): small records still make short slices.
 */
const ITEM_COST_BYTES = 256;
/** The same for sizing one idempotency record. */
const SIZE_COST_BYTES = 64;
export const SNAPSHOT_VERSION = 1;

export interface SnapshotState {
  readonly appliedIndex: number;
  readonly logClock: number;
  /** Records in strictly increasing key order. */
  readonly records: readonly StoredRecord[];
  /** Oldest first. */
  readonly idempotency: readonly (readonly [string, IdempotencyRecord])[];
}

/**
 * Writes a snapshot of state captured at one moment, in slices (step()) or at once: the caller
 * hands over the keys in order as they stood then, a lookup that yields each key's record as it
 * stood then, the idempotency records, and the exact encoded size of the records (which the
 * state machine keeps up to date as it applies). So the output is allocated once, at its size,
 * and written front to back: no growing, no second pass over the records, no copy. Each slice
 * does about `maxBytes` of work: first it sizes the idempotency records, then writes records,
 * then the idempotency records. A wrapper's header (`prefix`) may go in front, so the wrapper
 * need not copy the whole snapshot to put it there.
 */
export class SnapshotEncoder {
  private w: ByteWriter | null = null;
  private size: number;
  /** Idempotency records sized so far (phase 1), then records written (2), then idempotency records written (3). */
  private sized = 0;
  private nextRecord = 0;
  private nextIdem = 0;
  private output: Uint8Array | null = null;

  constructor(
    private readonly appliedIndex: number,
    private readonly logClock: number,
    private readonly keys: readonly string[],
    private readonly lookup: (key: string) => StoredRecord,
    private readonly idemKeys: readonly string[],
    private readonly idemLookup: (key: string) => IdempotencyRecord,
    recordBytes: number,
    private readonly prefix: Uint8Array | null = null,
  ) {
    this.size = (prefix?.length ?? 0) + MAGIC.length + 1 + varintSize(appliedIndex) + 8 + varintSize(keys.length) + recordBytes + varintSize(idemKeys.length);
  }

  /** Does about `maxBytes` more of the work (at least one record's); true once the snapshot is complete. */
  step(maxBytes: number): boolean {
    if (this.output !== null) return true;
    let budget = maxBytes;
    const idemKeys = this.idemKeys;
    const idemLookup = this.idemLookup;
    if (this.w === null) {
      while (this.sized < idemKeys.length) {
        const key = idemKeys[this.sized++]!;
        const n = stringSize(key) + 8 + resultSize(idemLookup(key).result);
        this.size += n;
        budget -= n + SIZE_COST_BYTES;
        if (budget <= 0 && this.sized < idemKeys.length) return false;
      }
      const w = (this.w = new ByteWriter(this.size));
      if (this.prefix !== null) w.raw(this.prefix);
      for (const b of MAGIC) w.u8(b);
      w.u8(SNAPSHOT_VERSION);
      w.varint(this.appliedIndex);
      w.f64(this.logClock);
      w.varint(this.keys.length);
    }
    const w = this.w;
    const keys = this.keys;
    const lookup = this.lookup;
    let i = this.nextRecord;
    if (i < keys.length) {
      do {
        const start = w.pos;
        writeStoredRecord(w, lookup(keys[i++]!));
        budget -= w.pos - start + ITEM_COST_BYTES;
      } while (i < keys.length && budget > 0);
      this.nextRecord = i;
      if (i < keys.length || budget <= 0) return false;
      w.varint(idemKeys.length);
    } else if (this.nextIdem === 0) {
      w.varint(idemKeys.length);
    }
    let k = this.nextIdem;
    while (k < idemKeys.length) {
      const start = w.pos;
      const key = idemKeys[k++]!;
      const rec = idemLookup(key);
      w.string(key);
      w.f64(rec.time);
      writeResult(w, rec.result);
      budget -= w.pos - start + ITEM_COST_BYTES;
      if (budget <= 0 && k < idemKeys.length) {
        this.nextIdem = k;
        return false;
      }
    }
    this.nextIdem = k;
    if (w.pos !== this.size) throw new Error(`snapshot size mismatch: computed ${this.size}, wrote ${w.pos}`);
    this.output = w.finish();
    return true;
  }

  /** The snapshot, once step() returned true. */
  get bytes(): Uint8Array {
    if (this.output === null) throw new Error('the snapshot is not complete');
    return this.output;
  }
}

/** Values are copied out of `data`. Throws KvError BAD_SNAPSHOT. */
export function decodeSnapshot(data: Uint8Array): SnapshotState {
  try {
    const r = new ByteReader(data);
    for (const b of MAGIC) if (r.u8() !== b) throw new KvError('BAD_SNAPSHOT', 'not a key-value snapshot (bad magic)');
    const version = r.u8();
    if (version !== SNAPSHOT_VERSION) throw new KvError('BAD_SNAPSHOT', `unknown snapshot version ${version}`);
    const appliedIndex = r.varint();
    const logClock = r.f64();
    const keyCount = r.varint();
    // Every record takes at least 5 bytes: refuse a count the remaining bytes cannot hold
    // before allocating for it.
    if (keyCount * 5 > r.remaining) throw new KvError('BAD_SNAPSHOT', `key count ${keyCount} exceeds the data`);
    const records = new Array<StoredRecord>(keyCount);
    for (let i = 0; i < keyCount; i++) records[i] = readStoredRecord(r);
    const idemCount = r.varint();
    if (idemCount * 10 > r.remaining) throw new KvError('BAD_SNAPSHOT', `idempotency count ${idemCount} exceeds the data`);
    const idempotency: [string, IdempotencyRecord][] = [];
    const seen = new Set<string>();
    let previousTime = -Infinity;
    for (let i = 0; i < idemCount; i++) {
      const key = r.string();
      const time = r.f64();
      // The table's expiry relies on records being oldest first, each key once.
      if (seen.has(key) || !(time >= previousTime)) throw new KvError('BAD_SNAPSHOT', `idempotency record ${i} is duplicated or out of order`);
      seen.add(key);
      previousTime = time;
      idempotency.push([key, { time, result: readResult(r) }]);
    }
    r.end();
    return { appliedIndex, logClock, records, idempotency };
  } catch (err) {
    if (err instanceof KvError && err.code !== 'BAD_SNAPSHOT') throw new KvError('BAD_SNAPSHOT', err.message);
    throw err;
  }
}
