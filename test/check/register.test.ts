// Known linearizable and known non-linearizable register histories (Herlihy & Wing 1990's
// definition; the checker of Wing & Gong 1993 / Lowe 2017).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, InvalidHistoryError, registerModel } from '../../src/check/index.js';
import { cas, read, write, type RegisterOp } from './ops.js';

function outcome(history: RegisterOp[]): string {
  return checkHistory(registerModel, history).outcome;
}

test('an empty history is linearizable', () => {
  const result = checkHistory(registerModel, []);
  assert.equal(result.ok, true);
  assert.equal(result.outcome, 'linearizable');
});

test('a sequential history that follows the register is linearizable', () => {
  assert.equal(outcome([read(1, 0, 1, null), write(1, 2, 3, 1), read(2, 4, 5, 1), write(2, 6, 7, 2), read(1, 8, 9, 2)]), 'linearizable');
});

test('a sequential read of an overwritten value is a violation', () => {
  assert.equal(outcome([write(1, 0, 1, 1), write(1, 2, 3, 2), read(2, 4, 5, 1)]), 'violation');
});

test('a read of a register never written returns null', () => {
  assert.equal(outcome([read(1, 0, 1, null)]), 'linearizable');
  assert.equal(outcome([read(1, 0, 1, 0)]), 'violation');
});

test('concurrent writes may take effect in either order', () => {
  const writes = [write(1, 0, 10, 1), write(2, 0, 10, 2)];
  assert.equal(outcome([...writes, read(3, 20, 30, 1)]), 'linearizable');
  assert.equal(outcome([...writes, read(3, 20, 30, 2)]), 'linearizable');
  // ...but once one order is observed, later reads must agree with it.
  assert.equal(outcome([...writes, read(3, 20, 30, 2), read(3, 40, 50, 1)]), 'violation');
});

test('a read concurrent with a write may return the old or the new value', () => {
  const before = [write(1, 0, 5, 1), write(2, 10, 20, 2)];
  assert.equal(outcome([...before, read(3, 12, 18, 1)]), 'linearizable');
  assert.equal(outcome([...before, read(3, 12, 18, 2)]), 'linearizable');
  // Two reads inside the write's window cannot see new then old.
  assert.equal(outcome([...before, read(3, 11, 13, 2), read(4, 14, 16, 1)]), 'violation');
});

test('ops that touch at one instant count as concurrent', () => {
  // The read is called at the very time the write returns: it may be ordered before it.
  assert.equal(outcome([write(1, 0, 10, 1), read(2, 10, 12, null)]), 'linearizable');
  assert.equal(outcome([write(1, 0, 10, 1), read(2, 11, 12, null)]), 'violation');
});

test('a stale read (old value after a later write completed) is a violation', () => {
  const history = [write(1, 0, 10, 1), write(2, 20, 30, 2), read(3, 40, 50, 1)];
  const result = checkHistory(registerModel, history);
  assert.equal(result.outcome, 'violation');
  assert.ok(result.outcome === 'violation');
  assert.equal(result.violation.stuck, 2);
  assert.deepEqual(result.violation.prefix, [0, 1]);
  assert.equal(result.violation.stateAfterPrefix, '2');
});

test('a lost write (acknowledged, then never visible) is a violation', () => {
  assert.equal(outcome([write(1, 0, 10, 1), read(2, 20, 30, null)]), 'violation');
  assert.equal(outcome([write(1, 0, 10, 1), write(2, 5, 15, 2), read(3, 20, 30, 1), read(3, 40, 50, 2)]), 'violation');
});

test('a CAS applied twice (two CAS with the same expected value both succeed) is a violation', () => {
  assert.equal(outcome([write(1, 0, 1, 0), cas(2, 5, 10, 0, 1, true), cas(3, 5, 10, 0, 2, true)]), 'violation');
});

test('of two concurrent CAS with the same expected value one wins and one fails', () => {
  const history = [write(1, 0, 1, 0), cas(2, 5, 10, 0, 1, true), cas(3, 5, 10, 0, 2, false)];
  assert.equal(outcome([...history, read(1, 20, 21, 1)]), 'linearizable');
  assert.equal(outcome([...history, read(1, 20, 21, 2)]), 'violation');
});

test('a CAS that fails although the register holds the expected value is a violation', () => {
  assert.equal(outcome([write(1, 0, 1, 7), cas(2, 2, 3, 7, 8, false)]), 'violation');
  assert.equal(outcome([write(1, 0, 1, 7), cas(2, 2, 3, 6, 8, false), read(1, 4, 5, 7)]), 'linearizable');
});

test('CAS expecting null succeeds only on an empty register', () => {
  assert.equal(outcome([cas(1, 0, 1, null, 'a', true), read(1, 2, 3, 'a')]), 'linearizable');
  assert.equal(outcome([write(1, 0, 1, 'x'), cas(1, 2, 3, null, 'a', true)]), 'violation');
});

test('a read of a value never written is a violation', () => {
  assert.equal(outcome([write(1, 0, 10, 1), write(2, 0, 10, 2), read(3, 5, 15, 3)]), 'violation');
});

test('values keep their type: the string "1" is not the number 1', () => {
  assert.equal(outcome([write(1, 0, 1, 1), read(1, 2, 3, '1')]), 'violation');
});

test('a result of the wrong kind for its op is a violation, not a crash', () => {
  const bad: RegisterOp = { process: 1, call: 0, ret: 1, input: { type: 'read' }, output: { type: 'write' } };
  assert.equal(outcome([bad]), 'violation');
});

test('a malformed history is rejected with InvalidHistoryError', () => {
  assert.throws(() => checkHistory(registerModel, [write(1, 10, 5, 1)]), InvalidHistoryError);
  assert.throws(() => checkHistory(registerModel, [write(1, Number.NaN, 5, 1)]), (e: unknown) => e instanceof InvalidHistoryError && e.index === 0);
});

test('the cache keeps twelve concurrent writes far below the 12! orders Wing & Gong alone would try', () => {
  const history: RegisterOp[] = [];
  for (let i = 0; i < 12; i++) history.push(write(i, 0, 100, i));
  // The reads pin down an order in which every write is visible once.
  for (let i = 0; i < 12; i++) history.push(read(20 + i, i * 8, i * 8 + 1, 11 - i));
  const result = checkHistory(registerModel, history);
  assert.equal(result.outcome, 'linearizable');
  // Configurations are (subset of writes placed, state): at most 2^12 × 13 of them.
  assert.ok(result.stats.steps < 2_000_000, `took ${result.stats.steps} steps`);
});
