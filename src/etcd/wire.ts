// Conversions at the edge of the etcd API: 64-bit integers (decimal strings from the loader, see
// proto.ts) to safe JavaScript numbers, keys (bytes on etcd's wire, strings in raftkv's store),
// and records to etcd's KeyValue. Everything here is checked: a client's bytes are hostile.
import { isWellFormedKey, type StoredRecord, type KvRecord } from '../kv/index.js';
import { EtcdError } from './errors.js';
import { status } from '@grpc/grpc-js';
import { commonPrefix, prefixSuccessor } from '../server/access.js';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** An int64 field (a decimal string, or a number from a hand-built message) as a safe integer. */
export function int64(value: unknown, field: string, min = Number.MIN_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d{1,20}$/.test(value) ? Number(value) : typeof value === 'bigint' ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new EtcdError(status.INVALID_ARGUMENT, `raftkv: ${field} must be an integer within ±2^53 (raftkv's ids and revisions are), not ${String(value).slice(0, 40)}`);
  if (n < min) throw new EtcdError(status.INVALID_ARGUMENT, `raftkv: ${field} must be at least ${min}`);
  return n;
}

/** The bytes of a key as raftkv's key string: UTF-8 that round-trips, else InvalidArgument. */
export function keyText(bytes: Uint8Array, field = 'key'): string {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new EtcdError(status.INVALID_ARGUMENT, `raftkv: the ${field} is not valid UTF-8 (raftkv keys are Unicode text)`);
  }
  if (!isWellFormedKey(text)) throw new EtcdError(status.INVALID_ARGUMENT, `raftkv: the ${field} is not valid Unicode`);
  if (text.charCodeAt(0) === 0xfeff) throw new EtcdError(status.INVALID_ARGUMENT, `raftkv: a ${field} may not start with U+FEFF`);
  return text;
}

/** etcd's prefix end: the key with its last byte below 0xff raised by one (the rest dropped). */
export function prefixEnd(key: Uint8Array): Uint8Array | null {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i]! < 0xff) {
      const end = new Uint8Array(key.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a request's key and range_end name, as etcd reads them. */
export type KeyRange =
  | { readonly type: 'key'; readonly key: string }
  /** Keys from `start` (inclusive) to `end` (exclusive); end null: no upper bound. */
  | { readonly type: 'range'; readonly start: string; readonly end: string | null };

/**
 * etcd's rules: no range_end, one key; range_end "\0", every key from `key` on; `key` "\0" and
 * range_end "\0", every key; otherwise [key, range_end). An empty key is refused (etcd's "key is
 * not provided"). A range_end that is not UTF-8 is accepted when it is the prefix end of the key
 * (what every client's "--prefix" sends), as the prefix it stands for.
 */
export function keyRange(keyBytes: Uint8Array, endBytes: Uint8Array, emptyKey: () => EtcdError): KeyRange {
  if (keyBytes.length === 0) throw emptyKey();
  if (endBytes.length === 0) return { type: 'key', key: keyText(keyBytes) };
  const isZero = (b: Uint8Array): boolean => b.length === 1 && b[0] === 0;
  if (isZero(endBytes)) return { type: 'range', start: isZero(keyBytes) ? '' : keyText(keyBytes), end: null };
  const start = keyText(keyBytes);
  const pe = prefixEnd(keyBytes);
  if (pe !== null && sameBytes(pe, endBytes)) return { type: 'range', start, end: prefixSuccessor(start) };
  return { type: 'range', start, end: keyText(endBytes, 'range_end') };
}

/** The longest prefix every key of the range starts with (for prefix permissions, src/server/auth.ts). */
export function rangePrefix(r: KeyRange): string {
  return r.type === 'key' ? r.key : commonPrefix(r.start, r.end);
}

export interface KeyValue {
  key: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Buffer;
  lease: number;
}

/** A stored record as etcd's KeyValue (value omitted for keys_only). */
export function keyValueOf(rec: StoredRecord | KvRecord, keysOnly = false): KeyValue {
  const value = keysOnly ? EMPTY : 'bytes' in rec ? Buffer.from(rec.bytes, 'latin1') : Buffer.from(rec.value.buffer, rec.value.byteOffset, rec.value.byteLength);
  return { key: Buffer.from(rec.key), create_revision: rec.createRevision, mod_revision: rec.modRevision, version: rec.version, value, lease: rec.lease };
}

const EMPTY = Buffer.alloc(0);
