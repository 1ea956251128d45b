// What apply() returns, and its binary encoding: results are kept in the idempotency table so a
// retried command answers exactly what its first application answered (dissertation §6.3), and
// that table rides in snapshots.
//
//   result   = 0x01 put index revision | 0x02 delete index revision deleted:u8
//            | 0x03 txn index revision succeeded:u8 n:varint response*n
//            | 0x04 compareFailed op:u8(1 put, 2 delete) index revision current:maybeRecord
//            | 0x05 rejected index code:str message:str
//            | 0x06 compact index revision compactRevision
//            | 0x07 leaseGrant index revision id ttlSeconds
//            | 0x08 leaseRevoke index revision id deleted:varint
//   response = 0x01 put key | 0x02 delete key deleted:u8 | 0x03 get key maybeRecord
//            | 0x04 range prefix:str more:u8 n:varint record*n
//            | 0x05 deleteRange start:str hasEnd:u8 [end:str] deleted:varint
//   record   = key:str createIndex modIndex version createRevision modRevision lease value:bytes
//   maybeRecord = 0 | 1 record
//
// `revision` is the store's revision after the command (API.md, "Coordination"): every answer
// carries it, as etcd's response headers do.
import { stringSize, varintSize, type ByteReader, type ByteWriter } from './bytes.js';
import { KvError } from './errors.js';

/** A key's state. Treat as immutable: the state machine replaces, never edits, a record. */
export interface KvRecord {
  readonly key: string;
  readonly value: Uint8Array;
  /** Log index of the write that created the key (since it last did not exist). */
  readonly createIndex: number;
  /** Log index of the last write to the key. */
  readonly modIndex: number;
  /** Writes since creation; 1 after the creating write. */
  readonly version: number;
  /** Store revision of the write that created the key (since it last did not exist). */
  readonly createRevision: number;
  /** Store revision of the last write to the key. */
  readonly modRevision: number;
  /** The lease the key is attached to; 0 for none. */
  readonly lease: number;
}

export interface PutResult {
  readonly type: 'put';
  readonly index: number;
  readonly revision: number;
}

export interface DeleteResult {
  readonly type: 'delete';
  readonly index: number;
  readonly revision: number;
  /** False when the key did not exist (nothing changed). */
  readonly deleted: boolean;
}

export type TxnResponse =
  | { readonly type: 'put'; readonly key: string }
  | { readonly type: 'delete'; readonly key: string; readonly deleted: boolean }
  | { readonly type: 'get'; readonly key: string; readonly record: KvRecord | null }
  | { readonly type: 'range'; readonly prefix: string; readonly items: readonly KvRecord[]; readonly more: boolean }
  | { readonly type: 'deleteRange'; readonly start: string; readonly end: string | null; readonly deleted: number };

export interface TxnResult {
  readonly type: 'txn';
  readonly index: number;
  readonly revision: number;
  /** Whether every compare held, so `success` ran rather than `failure`. */
  readonly succeeded: boolean;
  /** One per operation of the branch that ran, in order. */
  readonly responses: readonly TxnResponse[];
}

/** A put or delete whose conditions did not hold; nothing changed. */
export interface CompareFailedResult {
  readonly type: 'compareFailed';
  readonly error: 'COMPARE_FAILED';
  readonly op: 'put' | 'delete';
  readonly index: number;
  readonly revision: number;
  /** The key's state when the compare was made, or null when it did not exist. */
  readonly current: KvRecord | null;
}

/** A committed entry the state machine could not decode; nothing changed (deterministically). */
export interface RejectedResult {
  readonly type: 'rejected';
  readonly error: string;
  readonly message: string;
  readonly index: number;
}

/** History before `compactRevision` was dropped (POST /v1/compact, --auto-compaction-retention). */
export interface CompactResult {
  readonly type: 'compact';
  readonly index: number;
  readonly revision: number;
  readonly compactRevision: number;
}

export interface LeaseGrantResult {
  readonly type: 'leaseGrant';
  readonly index: number;
  readonly revision: number;
  readonly id: number;
  readonly ttlSeconds: number;
}

export interface LeaseRevokeResult {
  readonly type: 'leaseRevoke';
  readonly index: number;
  readonly revision: number;
  readonly id: number;
  /** Keys deleted with the lease. */
  readonly deleted: number;
}

export type KvResult =
  | PutResult
  | DeleteResult
  | TxnResult
  | CompareFailedResult
  | RejectedResult
  | CompactResult
  | LeaseGrantResult
  | LeaseRevokeResult;

const R_PUT = 0x01;
const R_DELETE = 0x02;
const R_TXN = 0x03;
const R_COMPARE_FAILED = 0x04;
const R_REJECTED = 0x05;
const R_COMPACT = 0x06;
const R_LEASE_GRANT = 0x07;
const R_LEASE_REVOKE = 0x08;

/** A record's key, indexes and version: what every encoding of a record starts with. */
export function writeRecordHead(w: ByteWriter, rec: RecordHead): void {
  w.string(rec.key);
  w.varint(rec.createIndex);
  w.varint(rec.modIndex);
  w.varint(rec.version);
  w.varint(rec.createRevision);
  w.varint(rec.modRevision);
  w.varint(rec.lease);
}

export function writeRecord(w: ByteWriter, rec: KvRecord): void {
  writeRecordHead(w, rec);
  w.bytes(rec.value);
}

type RecordHead = Omit<KvRecord, 'value'>;

/** `copy`: detach the value from the reader's buffer (it may be reused or be large). */
export function readRecord(r: ByteReader, copy: boolean): KvRecord {
  const key = r.string();
  const createIndex = r.varint();
  const modIndex = r.varint();
  const version = r.varint();
  const createRevision = r.varint();
  const modRevision = r.varint();
  const lease = r.varint();
  const bytes = r.bytes();
  // new Uint8Array(view) copies; a Buffer's slice() would not.
  return { key, value: copy ? new Uint8Array(bytes) : bytes, createIndex, modIndex, version, createRevision, modRevision, lease };
}

function writeMaybeRecord(w: ByteWriter, rec: KvRecord | null): void {
  w.u8(rec === null ? 0 : 1);
  if (rec !== null) writeRecord(w, rec);
}

function readMaybeRecord(r: ByteReader): KvRecord | null {
  return r.bool() ? readRecord(r, true) : null;
}

export function writeResult(w: ByteWriter, res: KvResult): void {
  switch (res.type) {
    case 'put':
      w.u8(R_PUT);
      w.varint(res.index);
      w.varint(res.revision);
      return;
    case 'delete':
      w.u8(R_DELETE);
      w.varint(res.index);
      w.varint(res.revision);
      w.u8(res.deleted ? 1 : 0);
      return;
    case 'txn':
      w.u8(R_TXN);
      w.varint(res.index);
      w.varint(res.revision);
      w.u8(res.succeeded ? 1 : 0);
      w.varint(res.responses.length);
      for (const resp of res.responses) writeResponse(w, resp);
      return;
    case 'compareFailed':
      w.u8(R_COMPARE_FAILED);
      w.u8(res.op === 'put' ? 1 : 2);
      w.varint(res.index);
      w.varint(res.revision);
      writeMaybeRecord(w, res.current);
      return;
    case 'rejected':
      w.u8(R_REJECTED);
      w.varint(res.index);
      w.string(res.error);
      w.string(res.message);
      return;
    case 'compact':
      w.u8(R_COMPACT);
      w.varint(res.index);
      w.varint(res.revision);
      w.varint(res.compactRevision);
      return;
    case 'leaseGrant':
      w.u8(R_LEASE_GRANT);
      w.varint(res.index);
      w.varint(res.revision);
      w.varint(res.id);
      w.varint(res.ttlSeconds);
      return;
    case 'leaseRevoke':
      w.u8(R_LEASE_REVOKE);
      w.varint(res.index);
      w.varint(res.revision);
      w.varint(res.id);
      w.varint(res.deleted);
      return;
  }
}

function writeResponse(w: ByteWriter, resp: TxnResponse): void {
  switch (resp.type) {
    case 'put':
      w.u8(1);
      w.string(resp.key);
      return;
    case 'delete':
      w.u8(2);
      w.string(resp.key);
      w.u8(resp.deleted ? 1 : 0);
      return;
    case 'get':
      w.u8(3);
      w.string(resp.key);
      writeMaybeRecord(w, resp.record);
      return;
    case 'range':
      w.u8(4);
      w.string(resp.prefix);
      w.u8(resp.more ? 1 : 0);
      w.varint(resp.items.length);
      for (const rec of resp.items) writeRecord(w, rec);
      return;
    case 'deleteRange':
      w.u8(5);
      w.string(resp.start);
      w.u8(resp.end === null ? 0 : 1);
      if (resp.end !== null) w.string(resp.end);
      w.varint(resp.deleted);
      return;
  }
}

export function readResult(r: ByteReader): KvResult {
  const tag = r.u8();
  switch (tag) {
    case R_PUT:
      return { type: 'put', index: r.varint(), revision: r.varint() };
    case R_DELETE:
      return { type: 'delete', index: r.varint(), revision: r.varint(), deleted: r.bool() };
    case R_TXN: {
      const index = r.varint();
      const revision = r.varint();
      const succeeded = r.bool();
      const responses: TxnResponse[] = [];
      for (let n = r.varint(); n > 0; n--) responses.push(readResponse(r));
      return { type: 'txn', index, revision, succeeded, responses };
    }
    case R_COMPARE_FAILED: {
      const op = r.u8();
      if (op !== 1 && op !== 2) throw new KvError('BAD_SNAPSHOT', `bad compare-failed op ${op}`);
      const index = r.varint();
      const revision = r.varint();
      return { type: 'compareFailed', error: 'COMPARE_FAILED', op: op === 1 ? 'put' : 'delete', index, revision, current: readMaybeRecord(r) };
    }
    case R_REJECTED: {
      const index = r.varint();
      return { type: 'rejected', index, error: r.string(), message: r.string() };
    }
    case R_COMPACT:
      return { type: 'compact', index: r.varint(), revision: r.varint(), compactRevision: r.varint() };
    case R_LEASE_GRANT:
      return { type: 'leaseGrant', index: r.varint(), revision: r.varint(), id: r.varint(), ttlSeconds: r.varint() };
    case R_LEASE_REVOKE:
      return { type: 'leaseRevoke', index: r.varint(), revision: r.varint(), id: r.varint(), deleted: r.varint() };
    default:
      throw new KvError('BAD_SNAPSHOT', `unknown result tag ${tag}`);
  }
}

function readResponse(r: ByteReader): TxnResponse {
  const tag = r.u8();
  switch (tag) {
    case 1:
      return { type: 'put', key: r.string() };
    case 2:
      return { type: 'delete', key: r.string(), deleted: r.bool() };
    case 3:
      return { type: 'get', key: r.string(), record: readMaybeRecord(r) };
    case 4: {
      const prefix = r.string();
      const more = r.bool();
      const items: KvRecord[] = [];
      for (let n = r.varint(); n > 0; n--) items.push(readRecord(r, true));
      return { type: 'range', prefix, items, more };
    }
    case 5: {
      const start = r.string();
      const hasEnd = r.u8();
      if (hasEnd > 1) throw new KvError('BAD_SNAPSHOT', 'bad end flag in a delete range response');
      const end = hasEnd === 1 ? r.string() : null;
      return { type: 'deleteRange', start, end, deleted: r.varint() };
    }
    default:
      throw new KvError('BAD_SNAPSHOT', `unknown transaction response tag ${tag}`);
  }
}

/** Bytes writeRecord writes for `rec`. */
export function recordSize(rec: KvRecord): number {
  return recordSizeOf(rec, rec.value.length);
}

/** Bytes a record with this head and a value of `valueLength` bytes takes encoded. */
export function recordSizeOf(rec: RecordHead, valueLength: number): number {
  return (
    stringSize(rec.key) +
    varintSize(rec.createIndex) +
    varintSize(rec.modIndex) +
    varintSize(rec.version) +
    varintSize(rec.createRevision) +
    varintSize(rec.modRevision) +
    varintSize(rec.lease) +
    varintSize(valueLength) +
    valueLength
  );
}

function maybeRecordSize(rec: KvRecord | null): number {
  return rec === null ? 1 : 1 + recordSize(rec);
}

/** Bytes writeResult writes for `res`: what it costs in the idempotency table of a snapshot. */
export function resultSize(res: KvResult): number {
  switch (res.type) {
    case 'put':
      return 1 + varintSize(res.index) + varintSize(res.revision);
    case 'delete':
      return 2 + varintSize(res.index) + varintSize(res.revision);
    case 'txn': {
      let n = 2 + varintSize(res.index) + varintSize(res.revision) + varintSize(res.responses.length);
      for (const resp of res.responses) n += responseSize(resp);
      return n;
    }
    case 'compareFailed':
      return 2 + varintSize(res.index) + varintSize(res.revision) + maybeRecordSize(res.current);
    case 'rejected':
      return 1 + varintSize(res.index) + stringSize(res.error) + stringSize(res.message);
    case 'compact':
      return 1 + varintSize(res.index) + varintSize(res.revision) + varintSize(res.compactRevision);
    case 'leaseGrant':
      return 1 + varintSize(res.index) + varintSize(res.revision) + varintSize(res.id) + varintSize(res.ttlSeconds);
    case 'leaseRevoke':
      return 1 + varintSize(res.index) + varintSize(res.revision) + varintSize(res.id) + varintSize(res.deleted);
  }
}

function responseSize(resp: TxnResponse): number {
  switch (resp.type) {
    case 'put':
      return 1 + stringSize(resp.key);
    case 'delete':
      return 2 + stringSize(resp.key);
    case 'get':
      return 1 + stringSize(resp.key) + maybeRecordSize(resp.record);
    case 'range': {
      let n = 2 + stringSize(resp.prefix) + varintSize(resp.items.length);
      for (const rec of resp.items) n += recordSize(rec);
      return n;
    }
    case 'deleteRange':
      return 2 + stringSize(resp.start) + (resp.end === null ? 0 : stringSize(resp.end)) + varintSize(resp.deleted);
  }
}
