// The JSON sizes the reply limits rest on (API.md "Health and limits"): each equals the UTF-8
// length of what JSON.stringify builds, on random records, listings and transaction results,
// for text that needs escaping, for bytes that are not UTF-8 (base64), and for the encodings
// a strict UTF-8 decoder refuses (overlong, surrogate, past U+10FFFF, truncated).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  jsonStringBytes,
  listJsonBytes,
  recordJsonBytes,
  recordToJson,
  txnResultJsonBytes,
  txnResultToJson,
  valueToJson,
  type KvRecord,
  type TxnResponse,
  type TxnResult,
} from '../../src/kv/index.js';
import { ByteWriter } from '../../src/kv/bytes.js';
import { resultSize, writeResult } from '../../src/kv/result.js';
import { bytes } from './helpers.js';

const utf8 = (s: string): number => new TextEncoder().encode(s).length;
const jsonBytes = (x: unknown): number => utf8(JSON.stringify(x));

const NOT_UTF8 = [
  [0xc0, 0x80], // overlong NUL
  [0xe0, 0x80, 0x80], // overlong
  [0xed, 0xa0, 0x80], // a surrogate
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0xf5, 0x80, 0x80, 0x80],
  [0xe2, 0x82], // truncated
  [0x80],
  [0xff],
].map((b) => new Uint8Array(b));

const textArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\b', '\u007f', '\u2028', '\ufeff', 'é', '😀', 'a'), maxLength: 20 }),
);
const valueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  textArb.map((s) => bytes(s)),
  fc.uint8Array({ maxLength: 40 }),
  fc.tuple(textArb, fc.constantFrom(...NOT_UTF8), textArb).map(([a, bad, b]) => new Uint8Array([...bytes(a), ...bad, ...bytes(b)])),
  textArb.map((s) => new Uint8Array([0xef, 0xbb, 0xbf, ...bytes(s)])), // a leading BOM
);
const numberArb = fc.oneof(fc.nat({ max: 20 }), fc.maxSafeNat());
const recordArb: fc.Arbitrary<KvRecord> = fc.record({
  key: textArb.filter((s) => s.length > 0),
  value: valueArb,
  createIndex: numberArb,
  modIndex: numberArb,
  version: numberArb,
  createRevision: numberArb,
  modRevision: numberArb,
  lease: numberArb,
});

test('jsonStringBytes is the UTF-8 length of JSON.stringify, lone surrogates and control characters included', () => {
  fc.assert(fc.property(textArb, (s) => assert.equal(jsonStringBytes(s), jsonBytes(s))), { numRuns: 2000, seed: 909 });
});

test('property: recordJsonBytes(rec) is the UTF-8 length of JSON.stringify(recordToJson(rec))', () => {
  fc.assert(
    fc.property(recordArb, (rec) => assert.equal(recordJsonBytes(rec), jsonBytes(recordToJson(rec)), JSON.stringify(recordToJson(rec)))),
    { numRuns: 3000, seed: 909 },
  );
});

test('recordJsonBytes on a 1 MiB value of each kind: text to escape, text, and binary', () => {
  const n = 1 << 20;
  const escapes = new Uint8Array(n).map((_, i) => [0x22, 0x5c, 0x0a, 0x01, 0x41][i % 5]!);
  const text = bytes('é😀ab'.repeat(n / 8));
  const binary = new Uint8Array(n).map((_, i) => (i * 131) & 0xff);
  for (const value of [escapes, text, binary]) {
    const rec: KvRecord = { key: 'k', value, createIndex: 7, modIndex: 9, version: 3, createRevision: 4, modRevision: 6, lease: 0 };
    assert.equal(recordJsonBytes(rec), jsonBytes(recordToJson(rec)));
  }
});

test('a value that starts with a byte-order mark keeps it in JSON (it is part of the value)', () => {
  const value = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
  assert.deepEqual(valueToJson(value), { value: '\ufeffa' });
  assert.deepEqual(bytes(valueToJson(value).value), value);
});

test('property: listJsonBytes and txnResultJsonBytes equal the JSON replies byte for byte', () => {
  const responseArb: fc.Arbitrary<TxnResponse> = fc.oneof(
    fc.record({ type: fc.constant('put' as const), key: textArb }),
    fc.record({ type: fc.constant('delete' as const), key: textArb, deleted: fc.boolean() }),
    fc.record({ type: fc.constant('get' as const), key: textArb, record: fc.option(recordArb, { nil: null }) }),
    fc.record({ type: fc.constant('range' as const), prefix: textArb, items: fc.array(recordArb, { maxLength: 4 }), more: fc.boolean() }),
  );
  const resultArb: fc.Arbitrary<TxnResult> = fc.record({
    type: fc.constant('txn' as const),
    index: numberArb,
    revision: numberArb,
    succeeded: fc.boolean(),
    responses: fc.array(responseArb, { maxLength: 5 }),
  });
  fc.assert(
    fc.property(resultArb, fc.array(recordArb, { maxLength: 5 }), fc.boolean(), (result, items, more) => {
      assert.equal(txnResultJsonBytes(result), jsonBytes(txnResultToJson(result)));
      assert.equal(listJsonBytes(items, more), jsonBytes({ items: items.map(recordToJson), more }));
      // And the binary size the idempotency table accounts for is what a snapshot writes.
      const w = new ByteWriter();
      writeResult(w, result);
      assert.equal(resultSize(result), w.pos);
    }),
    { numRuns: 1500, seed: 909 },
  );
});
