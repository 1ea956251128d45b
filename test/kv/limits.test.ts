// Limits and validation helpers the HTTP layer runs before proposing: typed KvError codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KvError,
  KvStateMachine,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  utf8Length,
  validateCommand,
  validateIdempotencyKey,
  validateKey,
  validateListLimit,
  validateValue,
} from '../../src/kv/index.js';
import { bytes } from './helpers.js';

function codeOf(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KvError, `a KvError, got ${String(err)}`);
    return err.code;
  }
  return 'ok';
}

test('keys: non-empty, well-formed, at most 4 KiB of UTF-8', () => {
  assert.equal(MAX_KEY_BYTES, 4096);
  assert.equal(codeOf(() => validateKey('k')), 'ok');
  assert.equal(codeOf(() => validateKey('')), 'BAD_KEY');
  assert.equal(codeOf(() => validateKey('a\ud800b')), 'BAD_KEY', 'a lone surrogate does not survive UTF-8');
  assert.equal(codeOf(() => validateKey('\udc00')), 'BAD_KEY');
  assert.equal(codeOf(() => validateKey('x'.repeat(4096))), 'ok');
  assert.equal(codeOf(() => validateKey('x'.repeat(4097))), 'KEY_TOO_LARGE');
  assert.equal(codeOf(() => validateKey('é'.repeat(2048))), 'ok', '4096 bytes');
  assert.equal(codeOf(() => validateKey('é'.repeat(2049))), 'KEY_TOO_LARGE', '4098 bytes though 2049 units');
  assert.equal(codeOf(() => validateKey('x'.repeat(11), 10)), 'KEY_TOO_LARGE', 'the limit is an option');
});

test('values: at most 1 MiB by default', () => {
  assert.equal(MAX_VALUE_BYTES, 1024 * 1024);
  assert.equal(codeOf(() => validateValue(new Uint8Array(MAX_VALUE_BYTES))), 'ok');
  assert.equal(codeOf(() => validateValue(new Uint8Array(MAX_VALUE_BYTES + 1))), 'VALUE_TOO_LARGE');
  assert.equal(codeOf(() => validateValue(new Uint8Array(11), 10)), 'VALUE_TOO_LARGE');
});

test('utf8Length agrees with TextEncoder, lone surrogates included', () => {
  const enc = new TextEncoder();
  for (const s of ['', 'abc', 'é', '€', '😀', 'a😀b', '\ud800', '\udc00x', '\ud83d\ude00\ud83d']) {
    assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
  }
});

test('idempotency keys look like <client>/<seq>', () => {
  assert.equal(codeOf(() => validateIdempotencyKey('c1/7')), 'ok');
  assert.equal(codeOf(() => validateIdempotencyKey('a/b/7')), 'ok');
  for (const bad of ['', 'c1', '/7', 'c1/', 'c 1/7', 'x'.repeat(300) + '/1']) {
    assert.equal(codeOf(() => validateIdempotencyKey(bad)), 'BAD_REQUEST', JSON.stringify(bad));
  }
});

test('list limits are integers from 1 to 10000', () => {
  assert.equal(codeOf(() => validateListLimit(1)), 'ok');
  assert.equal(codeOf(() => validateListLimit(10_000)), 'ok');
  for (const bad of [0, -1, 1.5, 10_001, Number.NaN]) assert.equal(codeOf(() => validateListLimit(bad)), 'BAD_REQUEST');
});

test('validateCommand checks every key and value of a command with the given limits', () => {
  const limits = { maxKeyBytes: 8, maxValueBytes: 4, maxTxnOps: 3 };
  assert.equal(codeOf(() => validateCommand({ type: 'put', key: 'k', value: bytes('v'), time: 1 }, limits)), 'ok');
  assert.equal(codeOf(() => validateCommand({ type: 'put', key: 'k', value: bytes('vvvvv'), time: 1 }, limits)), 'VALUE_TOO_LARGE');
  assert.equal(codeOf(() => validateCommand({ type: 'put', key: 'k', value: bytes('v'), time: 1, prevValue: bytes('12345') }, limits)), 'VALUE_TOO_LARGE');
  assert.equal(codeOf(() => validateCommand({ type: 'delete', key: 'k'.repeat(9), time: 1 }, limits)), 'KEY_TOO_LARGE');
  assert.equal(codeOf(() => validateCommand({ type: 'delete', key: 'k', time: 1, prevIndex: -1 }, limits)), 'BAD_REQUEST');
  assert.equal(codeOf(() => validateCommand({ type: 'put', key: 'k', value: bytes('v'), time: Number.NaN }, limits)), 'BAD_REQUEST');
  assert.equal(codeOf(() => validateCommand({ type: 'put', key: 'k', value: bytes('v'), time: 1, idempotencyKey: 'nope' }, limits)), 'BAD_REQUEST');
  const op = { type: 'get' as const, key: 'k' };
  assert.equal(codeOf(() => validateCommand({ type: 'txn', time: 1, compare: [], success: [op, op], failure: [op] }, limits)), 'ok');
  assert.equal(codeOf(() => validateCommand({ type: 'txn', time: 1, compare: [], success: [op, op], failure: [op, op] }, limits)), 'BAD_REQUEST');
  assert.equal(codeOf(() => validateCommand({ type: 'txn', time: 1, compare: [{ key: 'k', target: 'value', op: '=', value: bytes('12345') }], success: [], failure: [] }, limits)), 'VALUE_TOO_LARGE');
  assert.equal(codeOf(() => validateCommand({ type: 'txn', time: 1, compare: [], success: [{ type: 'put', key: '', value: bytes('') }], failure: [] }, limits)), 'BAD_KEY');
  const sm = new KvStateMachine({ limits });
  assert.equal(codeOf(() => sm.validate({ type: 'put', key: 'k', value: bytes('vvvvv'), time: 1 })), 'VALUE_TOO_LARGE');
});
