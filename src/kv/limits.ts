// Size limits and the validation helpers the HTTP layer runs BEFORE proposing. Limits are checked
// at proposal time only: apply() never consults them, because two nodes configured with different
// limits would otherwise diverge on the same committed entry (determinism, §5.3).
import { KvError } from './errors.js';

/** 4 KiB: the largest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 4 * 1024;
/** 1 MiB: the largest value. */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** The most operations one transaction may carry, compares and both branches counted. */
export const MAX_TXN_OPS = 128;
/** The largest `limit` a listing or range may ask for. */
export const MAX_LIST_LIMIT = 10_000;
/** The largest Idempotency-Key, in UTF-8 bytes. */
export const MAX_IDEMPOTENCY_KEY_BYTES = 256;

/**
 * 64 MiB: the default --max-response-bytes (API.md, "Health and limits"): no listing or
 * transaction reply may be larger. Transactions carry it as their replyLimit.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface KvLimits {
  /** @default MAX_KEY_BYTES */
  readonly maxKeyBytes: number;
  /** @default MAX_VALUE_BYTES */
  readonly maxValueBytes: number;
  /** @default MAX_TXN_OPS */
  readonly maxTxnOps: number;
}

export const DEFAULT_KV_LIMITS: KvLimits = {
  maxKeyBytes: MAX_KEY_BYTES,
  maxValueBytes: MAX_VALUE_BYTES,
  maxTxnOps: MAX_TXN_OPS,
};

/** UTF-8 length of a string (a lone surrogate counts 3, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** True when every surrogate is part of a pair: only such strings survive a UTF-8 round trip. */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff || i + 1 >= s.length || (s.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) return false;
    i++;
  }
  return true;
}

/** Throws BAD_KEY (empty, not valid Unicode) or KEY_TOO_LARGE. */
export function validateKey(key: string, maxKeyBytes: number = MAX_KEY_BYTES): void {
  if (typeof key !== 'string' || key.length === 0) throw new KvError('BAD_KEY', 'the key must be a non-empty string');
  if (!isWellFormed(key)) throw new KvError('BAD_KEY', 'the key is not valid Unicode (a lone surrogate)');
  // The command codec decodes keys with a BOM-stripping UTF-8 decoder (kept: logs already hold
  // entries decoded that way), so a key starting with U+FEFF would be stored under another name.
  if (key.charCodeAt(0) === 0xfeff) throw new KvError('BAD_KEY', 'a key may not start with U+FEFF (a byte-order mark)');
  // Each UTF-16 unit is at most 3 UTF-8 bytes: skip the count for the common short key.
  if (key.length * 3 > maxKeyBytes) {
    const bytes = utf8Length(key);
    if (bytes > maxKeyBytes) throw new KvError('KEY_TOO_LARGE', `the key is ${bytes} bytes; the limit is ${maxKeyBytes}`);
  }
}

/** Throws VALUE_TOO_LARGE. */
export function validateValue(value: Uint8Array, maxValueBytes: number = MAX_VALUE_BYTES): void {
  if (!(value instanceof Uint8Array)) throw new KvError('BAD_REQUEST', 'the value must be bytes');
  if (value.length > maxValueBytes) throw new KvError('VALUE_TOO_LARGE', `the value is ${value.length} bytes; the limit is ${maxValueBytes}`);
}

/** `<client>/<seq>`: both parts non-empty, no whitespace. Throws BAD_REQUEST. */
export function validateIdempotencyKey(key: string): void {
  const slash = key.lastIndexOf('/');
  if (slash <= 0 || slash === key.length - 1 || /\s/.test(key) || !isWellFormed(key) || utf8Length(key) > MAX_IDEMPOTENCY_KEY_BYTES) {
    throw new KvError('BAD_REQUEST', `the idempotency key must look like <client>/<seq> (at most ${MAX_IDEMPOTENCY_KEY_BYTES} bytes)`);
  }
}

/** A listing's limit: an integer in [1, MAX_LIST_LIMIT]. Throws BAD_REQUEST. */
export function validateListLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new KvError('BAD_REQUEST', `the limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
}
