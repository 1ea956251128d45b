// The key-value model, split by key (P-compositionality, Horn & Kroening 2015): each key is
// checked alone, and a violation names the smallest failing key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, kvModel, partitionHistory, type HistoryOp, type KvInput, type KvOutput, type Value } from '../../src/check/index.js';

type KvOp = HistoryOp<KvInput, KvOutput>;
const put = (p: number, call: number, ret: number, key: string, value: Value): KvOp => ({
  process: p, call, ret, input: { type: 'put', key, value }, output: { type: 'put' },
});
const get = (p: number, call: number, ret: number, key: string, value: Value | null): KvOp => ({
  process: p, call, ret, input: { type: 'get', key }, output: { type: 'get', value },
});
const del = (p: number, call: number, ret: number, key: string, deleted?: boolean): KvOp => ({
  process: p, call, ret, input: { type: 'delete', key }, output: deleted === undefined ? { type: 'delete' } : { type: 'delete', deleted },
});
const cas = (p: number, call: number, ret: number, key: string, expected: Value | null, value: Value | null, ok: boolean): KvOp => ({
  process: p, call, ret, input: { type: 'cas', key, expected, value }, output: { type: 'cas', ok },
});

test('keys are independent: a value of one key is never visible under another', () => {
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 1), get(2, 2, 3, 'b', null), get(2, 4, 5, 'a', 1)]).outcome, 'linearizable');
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 1), get(2, 2, 3, 'b', 1)]).outcome, 'violation');
});

test('the history is split by key, smallest key first, and unknown reads are dropped', () => {
  const unknownGet: KvOp = { process: 9, call: 0, ret: null, input: { type: 'get', key: 'a' }, output: null };
  const parts = partitionHistory(kvModel, [put(1, 0, 1, 'a', 1), get(1, 2, 3, 'b', null), put(1, 4, 5, 'a', 2), unknownGet]);
  assert.deepEqual(parts, [
    { key: 'b', indexes: [1] },
    { key: 'a', indexes: [0, 2] },
  ]);
});

test('a violation names the smallest failing key and lists every failing key', () => {
  const history = [
    put(1, 0, 1, 'big', 1), put(1, 2, 3, 'big', 2), get(2, 4, 5, 'big', 1), get(2, 6, 7, 'big', 2),
    put(1, 0, 1, 'small', 1), get(2, 4, 5, 'small', 3),
    put(1, 0, 1, 'fine', 1), get(2, 4, 5, 'fine', 1),
  ];
  const result = checkHistory(kvModel, history);
  assert.equal(result.outcome, 'violation');
  assert.ok(result.outcome === 'violation');
  assert.equal(result.key, 'small');
  assert.deepEqual([...result.failingKeys].sort(), ['big', 'small']);
  assert.equal(result.violation.stuck, 5);
  assert.ok(result.violation.window.every((w) => (w.op.input as KvInput).key === 'small'));
});

test('delete empties a key; a read of the old value after it completed is a violation', () => {
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 1), del(1, 2, 3, 'a', true), get(2, 4, 5, 'a', null)]).outcome, 'linearizable');
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 1), del(1, 2, 3, 'a'), get(2, 4, 5, 'a', 1)]).outcome, 'violation');
});

test('delete reports whether there was something to delete', () => {
  assert.equal(checkHistory(kvModel, [del(1, 0, 1, 'a', false)]).outcome, 'linearizable');
  assert.equal(checkHistory(kvModel, [del(1, 0, 1, 'a', true)]).outcome, 'violation');
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 1), del(1, 2, 3, 'a', false)]).outcome, 'violation');
});

test('cas: expected null means only-if-absent, value null is a conditional delete', () => {
  const ok = [cas(1, 0, 1, 'a', null, 'x', true), cas(1, 2, 3, 'a', 'x', null, true), get(1, 4, 5, 'a', null)];
  assert.equal(checkHistory(kvModel, ok).outcome, 'linearizable');
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 'x'), cas(1, 2, 3, 'a', null, 'y', true)]).outcome, 'violation');
  assert.equal(checkHistory(kvModel, [put(1, 0, 1, 'a', 'x'), cas(2, 2, 3, 'a', 'x', 'y', true), cas(3, 2, 3, 'a', 'x', 'z', true)]).outcome, 'violation');
});

test('an unknown put seen on its key is fine, but it cannot leak to another key', () => {
  const unknownPut: KvOp = { process: 2, call: 0, ret: 50, input: { type: 'put', key: 'a', value: 5 }, output: null, unknown: true };
  assert.equal(checkHistory(kvModel, [unknownPut, get(1, 100, 101, 'a', 5)]).outcome, 'linearizable');
  assert.equal(checkHistory(kvModel, [unknownPut, get(1, 100, 101, 'b', 5)]).outcome, 'violation');
});
