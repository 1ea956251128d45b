// How the store keeps a key's record: the value as a one-byte string (bytes.ts, bytesToLatin1),
// not a Uint8Array. A Uint8Array per value is an ArrayBuffer with a backing store the garbage
// collector tracks one by one, ~170 bytes more than the value; at 1M keys of 256 bytes that was
// a third of a member's memory. A string is the value's bytes plus a 16-byte header, always a
// copy (so it never keeps a network frame or a WAL buffer alive), and moved by the collector
// like any other object. Records leave the store as KvRecords (toRecord()), with a fresh
// Uint8Array, so nothing outside sees the difference.
import { ByteReader, ByteWriter, bytesToLatin1, latin1ToBytes } from './bytes.js';
import { recordSizeOf, writeRecordHead, type KvRecord } from './result.js';

export class StoredRecord {
  constructor(
    readonly key: string,
    /** The value's bytes, one character each (bytesToLatin1). */
    readonly bytes: string,
    readonly createIndex: number,
    readonly modIndex: number,
    readonly version: number,
    readonly createRevision: number,
    readonly modRevision: number,
    /** The lease the key is attached to; 0 for none. */
    readonly lease: number,
  ) {}

  static of(
    key: string,
    value: Uint8Array,
    createIndex: number,
    modIndex: number,
    version: number,
    createRevision: number,
    modRevision: number,
    lease: number,
  ): StoredRecord {
    return new StoredRecord(key, bytesToLatin1(value), createIndex, modIndex, version, createRevision, modRevision, lease);
  }

  get valueLength(): number {
    return this.bytes.length;
  }

  /** The record as the store's API gives it out: a KvRecord with its own copy of the value. */
  toRecord(): KvRecord {
    return {
      key: this.key,
      value: latin1ToBytes(this.bytes),
      createIndex: this.createIndex,
      modIndex: this.modIndex,
      version: this.version,
      createRevision: this.createRevision,
      modRevision: this.modRevision,
      lease: this.lease,
    };
  }
}

/** Writes `rec` as result.ts's writeRecord writes the KvRecord it stands for (the snapshot's record). */
export function writeStoredRecord(w: ByteWriter, rec: StoredRecord): void {
  writeRecordHead(w, rec);
  w.latin1(rec.bytes);
}

/**
 * Reads what writeStoredRecord (or writeRecord) wrote; the value is copied out of the reader's
 * buffer. The head is read in place, as readRecord reads it: a restore calls this per key.
 */
export function readStoredRecord(r: ByteReader): StoredRecord {
  const key = r.string();
  const createIndex = r.varint();
  const modIndex = r.varint();
  const version = r.varint();
  const createRevision = r.varint();
  const modRevision = r.varint();
  const lease = r.varint();
  return new StoredRecord(key, bytesToLatin1(r.bytes()), createIndex, modIndex, version, createRevision, modRevision, lease);
}

/** Bytes writeStoredRecord writes for `rec`: result.ts's recordSize of the KvRecord. */
export function storedRecordSize(rec: StoredRecord): number {
  return recordSizeOf(rec, rec.bytes.length);
}
