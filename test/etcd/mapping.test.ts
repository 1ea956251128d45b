// The etcd API's mapping, without a cluster: keys and ranges as etcd reads them (prefix ends
// that are not UTF-8, "\0" ends), the longest prefix a range lies in (for permissions), member
// ids as stable uint64s, 64-bit integers to safe numbers, and raftkv's errors as etcd's codes and
// exact messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { ProposalDroppedError } from '../../src/raft/index.js';
import { ApiError } from '../../src/server/errors.js';
import { EtcdError, toEtcdError } from '../../src/etcd/errors.js';
import { clusterUint64, memberUint64 } from '../../src/etcd/ids.js';
import { int64, keyRange, prefixEnd, rangePrefix } from '../../src/etcd/wire.js';
import { prefixSuccessor } from '../../src/server/access.js';
import { compareKeys } from '../../src/kv/index.js';

const empty = (): EtcdError => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: key is not provided');
const B = (s: string): Buffer => Buffer.from(s);

test('keyRange: one key, a prefix (its end computed as clients compute it), from a key on, every key, and [a, b)', () => {
  assert.deepEqual(keyRange(B('a'), Buffer.alloc(0), empty), { type: 'key', key: 'a' });
  assert.deepEqual(keyRange(B('foo/'), B('foo0'), empty), { type: 'range', start: 'foo/', end: 'foo0' });
  assert.deepEqual(keyRange(B('k'), Buffer.from([0]), empty), { type: 'range', start: 'k', end: null });
  assert.deepEqual(keyRange(Buffer.from([0]), Buffer.from([0]), empty), { type: 'range', start: '', end: null });
  assert.deepEqual(keyRange(B('a'), B('c'), empty), { type: 'range', start: 'a', end: 'c' });
  assert.throws(() => keyRange(Buffer.alloc(0), Buffer.alloc(0), empty), /key is not provided/);
});

test('a prefix whose byte-wise end is not UTF-8 ranges over exactly the keys under it', () => {
  // "¿" is C2 BF: its prefix end C2 C0 is not UTF-8; the range still means "under ¿".
  const prefix = B('a¿');
  const end = prefixEnd(prefix)!;
  assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(end));
  const r = keyRange(prefix, end, empty);
  assert.equal(r.type, 'range');
  if (r.type !== 'range') return;
  const inside = (k: string): boolean => compareKeys(k, r.start) >= 0 && (r.end === null || compareKeys(k, r.end) < 0);
  for (const k of ['a¿', 'a¿x', 'a¿\u{10ffff}', 'a¿😀']) assert.ok(inside(k), k);
  for (const k of ['a', 'aÀ', 'b', 'a¾']) assert.ok(!inside(k), k);
  assert.equal(prefixSuccessor('a\u{10ffff}'), 'b');
  assert.equal(prefixSuccessor('\u{10ffff}'), null);
  assert.equal(prefixSuccessor('a\ud7ff'), 'a\ue000');
});

test('rangePrefix: the longest prefix every key of a range shares', () => {
  assert.equal(rangePrefix({ type: 'key', key: 'a/b' }), 'a/b');
  assert.equal(rangePrefix({ type: 'range', start: 'app/', end: 'app0' }), 'app/');
  assert.equal(rangePrefix({ type: 'range', start: 'app/a', end: 'app/c' }), 'app/');
  assert.equal(rangePrefix({ type: 'range', start: 'app/', end: null }), '');
});

test('member and cluster ids: stable, distinct, non-zero uint64s; an unknown cluster id is 0', () => {
  assert.equal(memberUint64('n1'), memberUint64('n1'));
  assert.notEqual(memberUint64('n1'), memberUint64('n2'));
  for (const id of ['n1', 'n2', 'a', '']) {
    const v = BigInt(memberUint64(id));
    assert.ok(v > 0n && v < 2n ** 64n);
  }
  assert.equal(clusterUint64(null), '0');
  assert.notEqual(clusterUint64('00ff'), memberUint64('00ff'), 'members and clusters are hashed apart');
});

test('int64: decimal strings and numbers within 2^53; anything else is INVALID_ARGUMENT', () => {
  assert.equal(int64('42', 'x'), 42);
  assert.equal(int64(-3, 'x'), -3);
  for (const bad of ['9223372036854775807', 'abc', '', null, 1.5]) assert.throws(() => int64(bad, 'x'), (e: unknown) => e instanceof EtcdError && e.code === status.INVALID_ARGUMENT);
  assert.throws(() => int64('-1', 'limit', 0), (e: unknown) => e instanceof EtcdError);
});

test("raftkv's errors become etcd's codes and messages", () => {
  const cases: [unknown, status, string | RegExp][] = [
    [new ApiError('COMPACTED', 'x'), status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'],
    [new ApiError('FUTURE_REVISION', 'x'), status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'],
    [new ApiError('LEASE_NOT_FOUND', 'x'), status.NOT_FOUND, 'etcdserver: requested lease not found'],
    [new ApiError('NO_LEADER', 'x'), status.UNAVAILABLE, 'etcdserver: no leader'],
    [new ApiError('TIMEOUT', 'x'), status.UNAVAILABLE, 'etcdserver: request timed out'],
    [new ApiError('PERMISSION_DENIED', 'x'), status.PERMISSION_DENIED, 'etcdserver: permission denied'],
    [new ApiError('UNAUTHENTICATED', 'x'), status.UNAUTHENTICATED, 'etcdserver: invalid auth token'],
    [new ApiError('NO_SPACE', 'x'), status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'],
    [new ApiError('VALUE_TOO_LARGE', 'x'), status.INVALID_ARGUMENT, 'etcdserver: request is too large'],
    [new ApiError('BAD_REQUEST', 'why'), status.INVALID_ARGUMENT, 'raftkv: why'],
    [new ProposalDroppedError('dropped', 'unknown'), status.UNAVAILABLE, 'etcdserver: request timed out'],
    [new ProposalDroppedError('dropped', 'not-applied'), status.UNAVAILABLE, 'etcdserver: no leader'],
    [new Error('boom'), status.INTERNAL, /boom/],
  ];
  for (const [err, code, message] of cases) {
    const e = toEtcdError(err);
    assert.equal(e.code, code, String(err));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
  }
});
