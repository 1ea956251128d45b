// The key-value state machine's write and read semantics (docs/api.md, docs/kv.md): put, get,
// delete, every compare-and-set form, versions and indexes across delete and re-create, prefix
// listings, no-op and config entries, undecodable entries, binary-safe values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine } from '../../src/kv/index.js';
import { Driver, bytes, entryOf } from './helpers.js';

test('put then get returns the value with createIndex, modIndex and version', () => {
  const d = new Driver();
  assert.deepEqual(d.put('k', 'v1'), { type: 'put', index: 1, revision: 2 });
  assert.deepEqual(d.sm.get('k'), { key: 'k', value: bytes('v1'), createIndex: 1, modIndex: 1, version: 1, createRevision: 2, modRevision: 2, lease: 0 });
  d.put('other', 'x');
  assert.deepEqual(d.put('k', 'v2'), { type: 'put', index: 3, revision: 4 });
  assert.deepEqual(d.sm.get('k'), { key: 'k', value: bytes('v2'), createIndex: 1, modIndex: 3, version: 2, createRevision: 2, modRevision: 4, lease: 0 });
  assert.equal(d.sm.get('missing'), null);
  assert.equal(d.sm.size, 2);
  assert.equal(d.sm.appliedIndex, 3);
});

test('delete removes the key; deleting a missing key answers deleted=false', () => {
  const d = new Driver();
  d.put('k', 'v');
  assert.deepEqual(d.del('k'), { type: 'delete', index: 2, revision: 3, deleted: true });
  assert.equal(d.sm.get('k'), null);
  assert.deepEqual(d.del('k'), { type: 'delete', index: 3, revision: 3, deleted: false }, 'nothing changed: the revision stays');
  assert.equal(d.sm.size, 0);
  assert.deepEqual(d.sm.list('', 10), { items: [], more: false });
});

test('re-creating a deleted key restarts version at 1 with a new createIndex', () => {
  const d = new Driver();
  d.put('k', 'a');
  d.put('k', 'b');
  d.put('k', 'c');
  assert.equal(d.sm.get('k')?.version, 3);
  d.del('k');
  d.put('k', 'd');
  assert.deepEqual(d.sm.get('k'), { key: 'k', value: bytes('d'), createIndex: 5, modIndex: 5, version: 1, createRevision: 6, modRevision: 6, lease: 0 });
});

test('put prevExist=false creates only; it fails on an existing key and reports it', () => {
  const d = new Driver();
  assert.deepEqual(d.put('k', 'a', { prevExist: false }), { type: 'put', index: 1, revision: 2 });
  const failed = d.put('k', 'b', { prevExist: false });
  assert.deepEqual(failed, {
    type: 'compareFailed',
    error: 'COMPARE_FAILED',
    op: 'put',
    index: 2,
    revision: 2,
    current: { key: 'k', value: bytes('a'), createIndex: 1, modIndex: 1, version: 1, createRevision: 2, modRevision: 2, lease: 0 },
  });
  assert.deepEqual(d.sm.get('k')?.value, bytes('a'));
});

test('put prevExist=true updates only; it fails on a missing key with current null', () => {
  const d = new Driver();
  assert.deepEqual(d.put('k', 'a', { prevExist: true }), { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'put', index: 1, revision: 1, current: null });
  assert.equal(d.sm.get('k'), null);
  d.put('k', 'a');
  assert.deepEqual(d.put('k', 'b', { prevExist: true }), { type: 'put', index: 3, revision: 3 });
  assert.equal(d.sm.get('k')?.version, 2);
});

test('put prevValue succeeds only when the current value equals it byte for byte', () => {
  const d = new Driver();
  assert.equal(d.put('k', 'b', { prevValue: bytes('a') }).type, 'compareFailed', 'missing key fails prevValue');
  d.put('k', 'a');
  assert.equal(d.put('k', 'b', { prevValue: bytes('x') }).type, 'compareFailed');
  assert.equal(d.put('k', 'b', { prevValue: bytes('aa') }).type, 'compareFailed', 'a longer value is not equal');
  assert.equal(d.put('k', 'b', { prevValue: bytes('') }).type, 'compareFailed');
  assert.deepEqual(d.put('k', 'b', { prevValue: bytes('a') }), { type: 'put', index: 6, revision: 3 }, 'failed compares raised no revision');
  assert.deepEqual(d.sm.get('k')?.value, bytes('b'));
});

test('put prevIndex succeeds only when the key modIndex equals it', () => {
  const d = new Driver();
  assert.equal(d.put('k', 'a', { prevIndex: 0 }).type, 'compareFailed', 'a missing key has no modIndex');
  d.put('k', 'a'); // index 2
  d.put('other', 'x'); // index 3
  assert.equal(d.put('k', 'b', { prevIndex: 3 }).type, 'compareFailed');
  assert.equal(d.put('k', 'b', { prevIndex: 2 }).type, 'put');
  assert.equal(d.put('k', 'c', { prevIndex: 2 }).type, 'compareFailed', 'the previous put moved modIndex to 5');
  assert.deepEqual(d.sm.get('k')?.value, bytes('b'));
});

test('put conditions are conjunctive', () => {
  const d = new Driver();
  d.put('k', 'a');
  assert.equal(d.put('k', 'b', { prevValue: bytes('a'), prevIndex: 99 }).type, 'compareFailed');
  assert.equal(d.put('k', 'b', { prevValue: bytes('a'), prevExist: false }).type, 'compareFailed');
  assert.equal(d.put('k', 'b', { prevValue: bytes('a'), prevIndex: 1, prevExist: true }).type, 'put');
});

test('delete prevValue and prevIndex: success, failure, and failure on a missing key', () => {
  const d = new Driver();
  d.put('k', 'a');
  const failedValue = d.del('k', { prevValue: bytes('b') });
  assert.equal(failedValue.type, 'compareFailed');
  assert.equal(failedValue.type === 'compareFailed' && failedValue.op, 'delete');
  assert.equal(d.del('k', { prevIndex: 7 }).type, 'compareFailed');
  assert.ok(d.sm.get('k') !== null, 'a failed compare deletes nothing');
  assert.deepEqual(d.del('k', { prevValue: bytes('a'), prevIndex: 1 }), { type: 'delete', index: 4, revision: 3, deleted: true });
  assert.deepEqual(d.del('k', { prevIndex: 1 }), { type: 'compareFailed', error: 'COMPARE_FAILED', op: 'delete', index: 5, revision: 3, current: null });
});

test('values are binary-safe: non-UTF-8 bytes and empty values round-trip', () => {
  const d = new Driver();
  const raw = new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x00]);
  d.put('bin', raw);
  d.put('empty', new Uint8Array(0));
  assert.deepEqual(d.sm.get('bin')?.value, raw);
  assert.equal(d.sm.get('empty')?.value.length, 0);
  assert.equal(d.put('bin', 'x', { prevValue: raw.slice() }).type, 'put');
});

test('a stored value is a copy, not a view of the entry bytes', () => {
  const sm = new KvStateMachine();
  const e = entryOf(1, { type: 'put', key: 'k', value: bytes('abc'), time: 1 });
  sm.apply(e);
  (e.data as Uint8Array).fill(0);
  assert.deepEqual(sm.get('k')?.value, bytes('abc'));
});

test('list returns keys with the prefix in byte order, honouring limit and more', () => {
  const d = new Driver();
  for (const k of ['b/2', 'a', 'b/10', 'b/1', 'c', 'b', 'b/1/x', 'ba']) d.put(k, k);
  const keys = (prefix: string, limit: number): [string[], boolean] => {
    const r = d.sm.list(prefix, limit);
    return [r.items.map((i) => i.key), r.more];
  };
  assert.deepEqual(keys('b/', 10), [['b/1', 'b/1/x', 'b/10', 'b/2'], false]);
  assert.deepEqual(keys('b/', 4), [['b/1', 'b/1/x', 'b/10', 'b/2'], false], 'exactly limit items: more is false');
  assert.deepEqual(keys('b/', 2), [['b/1', 'b/1/x'], true]);
  assert.deepEqual(keys('', 3), [['a', 'b', 'b/1'], true]);
  assert.deepEqual(keys('b', 100), [['b', 'b/1', 'b/1/x', 'b/10', 'b/2', 'ba'], false]);
  assert.deepEqual(keys('zz', 5), [[], false]);
  assert.deepEqual(keys('b/', 0), [[], true]);
  const first = d.sm.list('a', 1).items[0];
  assert.deepEqual(first, { key: 'a', value: bytes('a'), createIndex: 2, modIndex: 2, version: 1, createRevision: 3, modRevision: 3, lease: 0 });
});

test('list orders by UTF-8 bytes, not UTF-16 units (astral characters after U+FFFF)', () => {
  const d = new Driver();
  const keys = ['😀', '\uffff', 'é', 'z', '\ue000'];
  for (const k of keys) d.put(k, 'v');
  const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(expected, ['z', 'é', '\ue000', '\uffff', '😀']);
  assert.deepEqual(d.sm.list('', 10).items.map((i) => i.key), expected);
});

test('list stays correct across many inserts and deletes (chunk splits and merges)', () => {
  const d = new Driver();
  const n = 5000;
  for (let i = 0; i < n; i++) d.put(`k/${String((i * 7919) % n).padStart(5, '0')}`, 'v');
  for (let i = 0; i < n; i += 3) d.del(`k/${String(i).padStart(5, '0')}`);
  const expected: string[] = [];
  for (let i = 0; i < n; i++) if (i % 3 !== 0) expected.push(`k/${String(i).padStart(5, '0')}`);
  const all = d.sm.list('k/', 10_000);
  assert.equal(all.more, false);
  assert.deepEqual(all.items.map((r) => r.key), expected);
  const page = d.sm.list('k/012', 5);
  assert.deepEqual(page.items.map((r) => r.key), expected.filter((k) => k.startsWith('k/012')).slice(0, 5));
  assert.equal(page.more, true);
});

test('no-op entries (empty data) and config entries change nothing and return undefined', () => {
  const sm = new KvStateMachine();
  assert.equal(sm.apply(entryOf(1, null)), undefined);
  assert.equal(sm.apply({ index: 2, term: 1, type: 'config', data: bytes('{"voters":["n1"]}') }), undefined);
  assert.equal(sm.size, 0);
  assert.equal(sm.appliedIndex, 2, 'skipped entries still count as applied');
});

test('an undecodable entry is answered with a rejected result and changes nothing', () => {
  const sm = new KvStateMachine();
  const result = sm.apply({ index: 1, term: 1, type: 'normal', data: new Uint8Array([0x09, 0x00, 1, 2]) });
  assert.equal(result?.type, 'rejected');
  assert.equal(result?.type === 'rejected' && result.error, 'BAD_COMMAND');
  assert.equal(sm.size, 0);
  assert.equal(sm.appliedIndex, 1);
});

test('applying an index at or below the applied index throws (each index exactly once)', () => {
  const sm = new KvStateMachine();
  sm.apply(entryOf(5, { type: 'put', key: 'k', value: bytes('v'), time: 1 }));
  assert.throws(() => sm.apply(entryOf(5, { type: 'put', key: 'k', value: bytes('w'), time: 1 })), /again/);
  assert.equal(sm.get('k')?.version, 1);
  sm.apply(entryOf(9, { type: 'put', key: 'k', value: bytes('w'), time: 1 }));
  assert.equal(sm.get('k')?.modIndex, 9, 'gaps (entries another layer consumed) are fine');
});
