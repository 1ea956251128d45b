// The exact size of the JSON the HTTP layer sends for records, listings and transaction
// results (txn-json.ts), computed without building it: a reply must be known to fit within
// --max-response-bytes BEFORE anything is serialized (API.md, "Health and limits"), and a
// record's value may be a megabyte that JSON.stringify would copy, escape and encode.
//
// Every size is the UTF-8 byte length of JSON.stringify of the corresponding *ToJson form, and
// test/kv/json-size.test.ts checks each against JSON.stringify on random data.
import type { KvRecord, TxnResponse, TxnResult } from './result.js';

/** `,"encoding":"base64"`, present when a value is not valid UTF-8 (valueToJson). */
const ENCODING_FIELD_BYTES = 20;
/**
 * `{"key":` `,"value":` `,"createIndex":` `,"modIndex":` `,"version":` `,"createRevision":`
 * `,"modRevision":` `,"lease":` `}`
 */
const RECORD_FIXED_BYTES = 97;
/** `{"items":[` `],"more":false}` (with `true`, one byte less). */
export const LIST_ENVELOPE_BYTES = 25;

/** Bytes of a JSON string literal for `s`, quotes included (well-formed JSON.stringify, ES2019). */
export function jsonStringBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += c === 0x22 || c === 0x5c ? 2 : c >= 0x20 ? 1 : isShortEscape(c) ? 2 : 6;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c > 0xdfff) n += 3;
    else if (c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 6; // a lone surrogate is written as \uXXXX
  }
  return n;
}

/** \b \t \n \f \r have two-character escapes; every other control character is \u00XX. */
function isShortEscape(c: number): boolean {
  return c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

/**
 * Bytes of a value's JSON form after `"value":` (valueToJson): the string literal of its text
 * when it is valid UTF-8, else its base64 literal plus the encoding field. One pass validates
 * UTF-8 exactly as a fatal TextDecoder does (no overlongs, no surrogates, nothing past U+10FFFF,
 * no truncated sequence) and counts escapes as it goes.
 */
export function valueJsonBytes(value: Uint8Array): number {
  const len = value.length;
  let n = 2;
  let i = 0;
  while (i < len) {
    const b = value[i]!;
    if (b < 0x80) {
      n += b === 0x22 || b === 0x5c ? 2 : b >= 0x20 ? 1 : isShortEscape(b) ? 2 : 6;
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return base64JsonBytes(len);
    if (i + need >= len) return base64JsonBytes(len); // truncated sequence
    const second = value[i + 1]!;
    if (second < lo || second > hi) return base64JsonBytes(len);
    for (let k = 2; k <= need; k++) {
      const c = value[i + k]!;
      if (c < 0x80 || c > 0xbf) return base64JsonBytes(len);
    }
    // Valid multi-byte UTF-8 is written as is: JSON.stringify escapes no code point ≥ U+0080
    // except lone surrogates, which valid UTF-8 cannot hold.
    n += need + 1;
    i += need + 1;
  }
  return n;
}

function base64JsonBytes(length: number): number {
  return 2 + 4 * Math.ceil(length / 3) + ENCODING_FIELD_BYTES;
}

function digits(n: number): number {
  return String(n).length;
}

/** Bytes of JSON.stringify(recordToJson(rec)), counted in one pass over the key and the value. */
export function recordJsonBytes(rec: KvRecord): number {
  return (
    RECORD_FIXED_BYTES +
    jsonStringBytes(rec.key) +
    valueJsonBytes(rec.value) +
    digits(rec.createIndex) +
    digits(rec.modIndex) +
    digits(rec.version) +
    digits(rec.createRevision) +
    digits(rec.modRevision) +
    digits(rec.lease)
  );
}

/**
 * The most a record written by a put of `value` at or before log index `index` and store
 * revision `revision` can take: its version and lease are counted at their widest (16 digits:
 * any safe integer); createIndex and modIndex are at most `index`, the revisions at most
 * `revision`.
 */
export function putRecordJsonBytesBound(key: string, valueBytes: number, index: number, revision: number): number {
  return RECORD_FIXED_BYTES + jsonStringBytes(key) + valueBytes + 2 * digits(index) + 2 * digits(revision) + 32;
}

/** Bytes of `{"items":[...],"more":B}` for these items (the listing's reply). */
export function listJsonBytes(items: readonly KvRecord[], more: boolean): number {
  let n = LIST_ENVELOPE_BYTES - (more ? 1 : 0) + Math.max(0, items.length - 1);
  for (const rec of items) n += recordJsonBytes(rec);
  return n;
}

// Transaction results (txnResultToJson): `{"succeeded":B,"index":N,"revision":R,"responses":[...]}`.
/** `{"succeeded":` `,"index":` `,"revision":` `,"responses":[` `]}` */
export const TXN_RESULT_FIXED_BYTES = 50;
/** `{"type":"put","key":` `}` */
export const PUT_RESPONSE_FIXED_BYTES = 21;
/** `{"type":"delete","key":` `,"deleted":` `}` */
export const DELETE_RESPONSE_FIXED_BYTES = 35;
/** `{"type":"get","key":` `,"record":` `}` */
export const GET_RESPONSE_FIXED_BYTES = 31;
/** `{"type":"range","prefix":` `,"items":[` `],"more":` `}` */
export const RANGE_RESPONSE_FIXED_BYTES = 45;

const boolBytes = (b: boolean): number => (b ? 4 : 5);
/** {"type":"deleteRange","start":,"end":,"deleted":} */
export const DELETE_RANGE_RESPONSE_FIXED_BYTES = 49;

function responseJsonBytes(r: TxnResponse): number {
  switch (r.type) {
    case 'put':
      return PUT_RESPONSE_FIXED_BYTES + jsonStringBytes(r.key);
    case 'delete':
      return DELETE_RESPONSE_FIXED_BYTES + jsonStringBytes(r.key) + boolBytes(r.deleted);
    case 'get':
      return GET_RESPONSE_FIXED_BYTES + jsonStringBytes(r.key) + (r.record === null ? 4 : recordJsonBytes(r.record));
    case 'range': {
      let n = RANGE_RESPONSE_FIXED_BYTES + jsonStringBytes(r.prefix) + boolBytes(r.more) + Math.max(0, r.items.length - 1);
      for (const rec of r.items) n += recordJsonBytes(rec);
      return n;
    }
    case 'deleteRange':
      return DELETE_RANGE_RESPONSE_FIXED_BYTES + jsonStringBytes(r.start) + (r.end === null ? 4 : jsonStringBytes(r.end)) + digits(r.deleted);
  }
}

/** Bytes of JSON.stringify(txnResultToJson(result)). */
export function txnResultJsonBytes(result: TxnResult): number {
  let n = TXN_RESULT_FIXED_BYTES + boolBytes(result.succeeded) + digits(result.index) + digits(result.revision) + Math.max(0, result.responses.length - 1);
  for (const r of result.responses) n += responseJsonBytes(r);
  return n;
}
