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
// and restore rebuilds the ordered index without sorting.
import { ByteReader, ByteWriter, varintSize } from './bytes.js';
import { KvError } from './errors.js';
import type { IdempotencyRecord } from './idempotency.js';
import { readRecord, readResult, recordSize, writeRecord, writeResult, type KvRecord } from './result.js';

const MAGIC = [0x52, 0x4b, 0x56, 0x53]; // "RKVS"
export const SNAPSHOT_VERSION = 1;

export interface SnapshotState {
  readonly appliedIndex: number;
  readonly logClock: number;
  /** Records in strictly increasing key order. */
  readonly records: readonly KvRecord[];
  /** Oldest first. */
  readonly idempotency: readonly (readonly [string, IdempotencyRecord])[];
}

/** `records` is walked twice (size, then bytes), so the output is allocated exactly once. */
export function encodeSnapshot(
  appliedIndex: number,
  logClock: number,
  keyCount: number,
  forEachRecord: (visit: (rec: KvRecord) => void) => void,
  idempotency: Iterable<readonly [string, IdempotencyRecord]>,
): Uint8Array {
  const tail = new ByteWriter(256);
  let idemCount = 0;
  for (const [key, rec] of idempotency) {
    tail.string(key);
    tail.f64(rec.time);
    writeResult(tail, rec.result);
    idemCount++;
  }
  const idemBytes = tail.finish();
  let size = MAGIC.length + 1 + varintSize(appliedIndex) + 8 + varintSize(keyCount) + varintSize(idemCount) + idemBytes.length;
  forEachRecord((rec) => {
    size += recordSize(rec);
  });
  const w = new ByteWriter(size);
  for (const b of MAGIC) w.u8(b);
  w.u8(SNAPSHOT_VERSION);
  w.varint(appliedIndex);
  w.f64(logClock);
  w.varint(keyCount);
  forEachRecord((rec) => writeRecord(w, rec));
  w.varint(idemCount);
  w.raw(idemBytes);
  if (w.pos !== size) throw new Error(`snapshot size mismatch: computed ${size}, wrote ${w.pos}`);
  return w.finish();
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
    const records = new Array<KvRecord>(keyCount);
    for (let i = 0; i < keyCount; i++) records[i] = readRecord(r, true);
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
