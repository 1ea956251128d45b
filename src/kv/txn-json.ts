// The JSON form of a transaction (POST /v1/txn, docs/api.md) to and from the command and result
// types. Parsing is strict: an unknown field, a wrong type or an over-limit key or value throws
// KvError before anything is proposed.
//
//   {"compare": [{"key","target":"value"|"version"|"createIndex"|"modIndex"|"createRevision"
//                 |"modRevision"|"lease","op":"="|"!="|"<"|">", "value": string | number,
//                 "encoding"?: "base64"}],
//    "success": [op], "failure": [op]}
//   op = {"type":"put","key","value","encoding"?,"lease"?} | {"type":"delete","key"} | {"type":"get","key"}
//      | {"type":"range","prefix","limit"?}
//
// A value is UTF-8 text unless "encoding" is "base64". Results render values the same way.
import { decodeBase64, encodeBase64 } from './base64.js';
import { COMPARE_OPS, COMPARE_TARGETS, validateCommand, type CompareOp, type CompareTarget, type TxnCommand, type TxnCompare, type TxnOp } from './command.js';
import { KvError } from './errors.js';
import { DEFAULT_KV_LIMITS, type KvLimits } from './limits.js';
import type { KvRecord, TxnResponse, TxnResult } from './result.js';

/** The range limit when a JSON range op gives none. */
export const DEFAULT_RANGE_LIMIT = 1000;

const encoder = new TextEncoder();
// ignoreBOM: a value that starts with U+FEFF keeps it (the default decoder would drop it, and
// the client would read back a different value than it wrote).
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type Json = Record<string, unknown>;

function bad(message: string): never {
  throw new KvError('BAD_REQUEST', message);
}

function object(x: unknown, where: string, allowed: readonly string[]): Json {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) bad(`${where} must be an object`);
  for (const k of Object.keys(x)) if (!allowed.includes(k)) bad(`${where} has an unknown field "${k}"`);
  return x as Json;
}

function string(o: Json, field: string, where: string): string {
  const v = o[field];
  if (typeof v !== 'string') bad(`${where}.${field} must be a string`);
  return v;
}

function bytesOf(o: Json, where: string): Uint8Array {
  const text = string(o, 'value', where);
  const encoding = o['encoding'];
  if (encoding === undefined) return encoder.encode(text);
  if (encoding === 'base64') return decodeBase64(text);
  return bad(`${where}.encoding must be "base64" when given`);
}

function array(o: Json, field: string): unknown[] {
  const v = o[field];
  if (v === undefined) return [];
  if (!Array.isArray(v)) bad(`${field} must be an array`);
  return v;
}

function parseCompare(x: unknown, i: number): TxnCompare {
  const where = `compare[${i}]`;
  const o = object(x, where, ['key', 'target', 'op', 'value', 'encoding']);
  const key = string(o, 'key', where);
  const target = o['target'] as CompareTarget;
  const op = o['op'] as CompareOp;
  if (!COMPARE_TARGETS.includes(target)) bad(`${where}.target must be one of ${COMPARE_TARGETS.join(', ')}`);
  if (!COMPARE_OPS.includes(op)) bad(`${where}.op must be one of ${COMPARE_OPS.join(' ')}`);
  if (target === 'value') return { key, target, op, value: bytesOf(o, where) };
  const value = o['value'];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) bad(`${where}.value must be a non-negative integer`);
  if (o['encoding'] !== undefined) bad(`${where}.encoding applies only to value compares`);
  return { key, target, op, value };
}

function parseOp(x: unknown, where: string): TxnOp {
  const type = typeof x === 'object' && x !== null ? (x as Json)['type'] : undefined;
  switch (type) {
    case 'put': {
      const o = object(x, where, ['type', 'key', 'value', 'encoding', 'lease']);
      const lease = o['lease'];
      if (lease === undefined || lease === 0) return { type, key: string(o, 'key', where), value: bytesOf(o, where) };
      if (typeof lease !== 'number' || !Number.isSafeInteger(lease) || lease < 0) bad(`${where}.lease must be a lease id`);
      return { type, key: string(o, 'key', where), value: bytesOf(o, where), lease };
    }
    case 'delete':
    case 'get': {
      const o = object(x, where, ['type', 'key']);
      return { type, key: string(o, 'key', where) };
    }
    case 'range': {
      const o = object(x, where, ['type', 'prefix', 'limit']);
      const limit = o['limit'] ?? DEFAULT_RANGE_LIMIT;
      if (typeof limit !== 'number') bad(`${where}.limit must be a number`);
      return { type, prefix: string(o, 'prefix', where), limit };
    }
    default:
      return bad(`${where}.type must be put, delete, get or range`);
  }
}

/** Parses and validates a POST /v1/txn body into a command. Throws KvError. */
export function txnFromJson(body: unknown, time: number, idempotencyKey?: string, limits: KvLimits = DEFAULT_KV_LIMITS): TxnCommand {
  const o = object(body, 'the transaction', ['compare', 'success', 'failure']);
  const compare = array(o, 'compare').map(parseCompare);
  const success = array(o, 'success').map((x, i) => parseOp(x, `success[${i}]`));
  const failure = array(o, 'failure').map((x, i) => parseOp(x, `failure[${i}]`));
  const cmd: TxnCommand = idempotencyKey === undefined
    ? { type: 'txn', time, compare, success, failure }
    : { type: 'txn', time, idempotencyKey, compare, success, failure };
  validateCommand(cmd, limits);
  return cmd;
}

/** `{value}` for UTF-8 text, `{value, encoding: "base64"}` otherwise. */
export function valueToJson(value: Uint8Array): { value: string; encoding?: 'base64' } {
  try {
    return { value: strictDecoder.decode(value) };
  } catch {
    return { value: encodeBase64(value), encoding: 'base64' };
  }
}

export interface KvRecordJson {
  key: string;
  value: string;
  encoding?: 'base64';
  createIndex: number;
  modIndex: number;
  version: number;
  createRevision: number;
  modRevision: number;
  /** 0: no lease. */
  lease: number;
}

export function recordToJson(rec: KvRecord): KvRecordJson {
  return {
    key: rec.key,
    ...valueToJson(rec.value),
    createIndex: rec.createIndex,
    modIndex: rec.modIndex,
    version: rec.version,
    createRevision: rec.createRevision,
    modRevision: rec.modRevision,
    lease: rec.lease,
  };
}

export type TxnResponseJson =
  | { type: 'put'; key: string }
  | { type: 'delete'; key: string; deleted: boolean }
  | { type: 'get'; key: string; record: KvRecordJson | null }
  | { type: 'range'; prefix: string; items: KvRecordJson[]; more: boolean }
  | { type: 'deleteRange'; start: string; end: string | null; deleted: number };

export interface TxnResultJson {
  succeeded: boolean;
  index: number;
  /** The store's revision after the transaction. */
  revision: number;
  responses: TxnResponseJson[];
}

function responseToJson(r: TxnResponse): TxnResponseJson {
  switch (r.type) {
    case 'put':
      return { type: 'put', key: r.key };
    case 'delete':
      return { type: 'delete', key: r.key, deleted: r.deleted };
    case 'get':
      return { type: 'get', key: r.key, record: r.record === null ? null : recordToJson(r.record) };
    case 'range':
      return { type: 'range', prefix: r.prefix, items: r.items.map(recordToJson), more: r.more };
    case 'deleteRange':
      return { type: 'deleteRange', start: r.start, end: r.end, deleted: r.deleted };
  }
}

/** The JSON answer of POST /v1/txn. */
export function txnResultToJson(result: TxnResult): TxnResultJson {
  return { succeeded: result.succeeded, index: result.index, revision: result.revision, responses: result.responses.map(responseToJson) };
}
