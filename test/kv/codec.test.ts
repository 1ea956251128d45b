// The binary command codec: round trips for every command shape (fast-check), strict decoding of
// malformed bytes, and the key order used by listings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { COMMAND_TAG, KvError, compareKeys, decodeCommand, encodeCommand, type Command } from '../../src/kv/index.js';
import { anyKeyArb, bytes, commandArb } from './helpers.js';

test('property: decodeCommand(encodeCommand(c)) equals c for every command shape', () => {
  fc.assert(
    fc.property(commandArb, (cmd) => {
      assert.deepStrictEqual(decodeCommand(encodeCommand(cmd)), cmd);
    }),
    { numRuns: 1000 },
  );
});

test('property: arbitrary keys, values, finite times and indexes round-trip', () => {
  fc.assert(
    fc.property(
      anyKeyArb,
      fc.uint8Array({ maxLength: 300 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.maxSafeNat(),
      fc.string({ minLength: 1, maxLength: 80 }),
      (key, value, time, prevIndex, client) => {
        const cmd: Command = { type: 'put', key, value, time, prevIndex, idempotencyKey: `${client}/1` };
        assert.deepStrictEqual(decodeCommand(encodeCommand(cmd)), cmd);
      },
    ),
  );
});

test('long keys (beyond the short-string path) and large values round-trip', () => {
  const key = 'ключ/'.repeat(200) + '😀';
  const value = new Uint8Array(70_000).map((_, i) => i * 31);
  const cmd: Command = { type: 'put', key, value, time: 1 };
  assert.deepStrictEqual(decodeCommand(encodeCommand(cmd)), cmd);
});

test('a put is compact: 1 tag + 1 flags + 8 time + key and value with 1-byte lengths', () => {
  const enc = encodeCommand({ type: 'put', key: 'key', value: bytes('value'), time: 0 });
  assert.equal(enc.length, 1 + 1 + 8 + 1 + 3 + 1 + 5);
  assert.equal(enc[0], COMMAND_TAG.put);
  assert.notEqual(enc[0], 0xfe, 'never the member-registry tag');
});

test('decoding is strict: bad tags, flags, truncation, trailing bytes and bad UTF-8 throw BAD_COMMAND', () => {
  const good = encodeCommand({ type: 'put', key: 'k', value: bytes('v'), time: 1, prevIndex: 3 });
  const bad = (b: Uint8Array, why: string): void =>
    assert.throws(() => decodeCommand(b), (e: unknown) => e instanceof KvError && e.code === 'BAD_COMMAND', why);
  bad(new Uint8Array(0), 'empty');
  for (let n = 1; n < good.length; n++) bad(good.subarray(0, n), `truncated to ${n}`);
  bad(new Uint8Array([...good, 0]), 'trailing');
  bad(Uint8Array.of(0x07, ...good.subarray(1)), 'unknown tag');
  bad(Uint8Array.of(good[0]!, 0x80, ...good.subarray(2)), 'unknown flag');
  const badUtf8 = encodeCommand({ type: 'delete', key: 'kk', time: 1 });
  badUtf8[badUtf8.length - 1] = 0xff;
  bad(badUtf8, 'invalid UTF-8 key');
  const emptyKey = encodeCommand({ type: 'delete', key: 'k', time: 1 });
  bad(Uint8Array.of(...emptyKey.subarray(0, 10), 0), 'empty key');
  const txn = encodeCommand({ type: 'txn', time: 1, compare: [], success: [{ type: 'get', key: 'k' }], failure: [] });
  txn[txn.length - 4] = 0x09;
  bad(txn, 'unknown txn op');
});

test('property: compareKeys is UTF-8 byte order', () => {
  fc.assert(
    fc.property(anyKeyArb, anyKeyArb, (a, b) => {
      const expected = Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
      assert.equal(Math.sign(compareKeys(a, b)), expected);
    }),
    { numRuns: 2000 },
  );
});

test('a txn carries replyLimit as flag 0x20 and a trailing varint; a txn without it decodes as before', () => {
  const base: Command = { type: 'txn', time: 5, compare: [], success: [{ type: 'range', prefix: 'a', limit: 3 }], failure: [] };
  const old = encodeCommand(base);
  // The bytes every older log holds: tag 0x03, no flags, time, no compares, one range op, no failure ops.
  assert.deepEqual([...old], [0x03, 0x00, 0x40, 0x14, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x04, 0x01, 0x61, 0x03, 0x00]);
  assert.deepStrictEqual(decodeCommand(old), base);
  const limited = encodeCommand({ ...base, replyLimit: 64 * 1024 * 1024 });
  assert.deepEqual([...limited.subarray(0, 2)], [0x03, 0x20]);
  assert.deepEqual([...limited.subarray(0, old.length)].slice(2), [...old].slice(2), 'the same body, then the limit');
  assert.deepStrictEqual(decodeCommand(limited), { ...base, replyLimit: 64 * 1024 * 1024 });
});

test('decoding refuses replyLimit on a put or delete, and a time that is not a finite number', () => {
  const bad = (b: Uint8Array, why: string): void =>
    assert.throws(() => decodeCommand(b), (e: unknown) => e instanceof KvError && e.code === 'BAD_COMMAND', why);
  const put = encodeCommand({ type: 'put', key: 'k', value: bytes('v'), time: 1 });
  bad(Uint8Array.of(put[0]!, 0x20, ...put.subarray(2)), 'replyLimit on a put');
  for (const time of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    bad(encodeCommand({ type: 'delete', key: 'k', time }), `time ${time}`);
  }
});

test('a plain put (its own decoding path) is as strict: truncation and trailing bytes throw, both shapes round-trip', () => {
  for (const cmd of [
    { type: 'put', key: 'bench-000001', value: bytes('v'.repeat(256)), time: 5 },
    { type: 'put', key: 'k', value: bytes(''), time: 1.5, idempotencyKey: 'client/7' },
  ] as const satisfies readonly Command[]) {
    const good = encodeCommand(cmd);
    assert.deepStrictEqual(decodeCommand(good), cmd);
    const bad = (b: Uint8Array, why: string): void =>
      assert.throws(() => decodeCommand(b), (e: unknown) => e instanceof KvError && e.code === 'BAD_COMMAND', why);
    for (let n = 1; n < good.length; n++) bad(good.subarray(0, n), `truncated to ${n}`);
    bad(new Uint8Array([...good, 0]), 'trailing');
  }
});
