// Histories with unknown outcomes (timeouts, 504s, dropped connections): such an op may take
// effect at any time after its call, or never.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, registerModel } from '../../src/check/index.js';
import { read, timedOutCas, timedOutWrite, write, type RegisterOp } from './ops.js';

function outcome(history: RegisterOp[]): string {
  return checkHistory(registerModel, history).outcome;
}

test('a timed-out write that later shows up in a read is fine', () => {
  assert.equal(outcome([write(1, 0, 5, 1), timedOutWrite(2, 10, 20, 2), read(3, 30, 40, 2)]), 'linearizable');
  assert.equal(outcome([write(1, 0, 5, 1), timedOutWrite(2, 10, null, 2), read(3, 30, 40, 2)]), 'linearizable');
});

test('a timed-out write may take effect long after the client gave up', () => {
  const history = [timedOutWrite(2, 10, 20, 2), read(1, 30, 40, null), read(1, 50, 60, null), read(3, 100, 110, 2)];
  assert.equal(outcome(history), 'linearizable');
});

test('a timed-out write that was never seen is fine', () => {
  assert.equal(outcome([write(1, 0, 5, 1), timedOutWrite(2, 10, 20, 2), read(3, 30, 40, 1), read(3, 50, 60, 1)]), 'linearizable');
});

test('an unknown write cannot explain a read that happened before its call', () => {
  const result = checkHistory(registerModel, [read(1, 0, 10, 2), timedOutWrite(2, 20, null, 2)]);
  assert.equal(result.outcome, 'violation');
  assert.ok(result.outcome === 'violation');
  assert.equal(result.violation.stuck, 0);
});

test('an unknown write takes effect at one instant: new then old again is a violation', () => {
  const history = [write(1, 0, 5, 1), timedOutWrite(2, 10, null, 2), read(3, 20, 25, 2), read(3, 30, 35, 1)];
  assert.equal(outcome(history), 'violation');
});

test('an unknown write takes effect at most once', () => {
  const history = [timedOutWrite(2, 0, null, 2), read(1, 10, 11, 2), write(1, 20, 21, 1), read(1, 30, 31, 2)];
  assert.equal(outcome(history), 'violation');
});

test('an unknown CAS applies only if its expected value is there when it takes effect', () => {
  const base = [write(1, 0, 5, 1), timedOutCas(2, 10, 1, 9)];
  assert.equal(outcome([...base, read(3, 20, 30, 9)]), 'linearizable');
  assert.equal(outcome([write(1, 0, 5, 1), timedOutCas(2, 10, 7, 9), read(3, 20, 30, 9)]), 'violation');
  // The CAS may also land after a later write restored its expected value.
  assert.equal(outcome([...base, write(1, 12, 13, 2), write(1, 14, 15, 1), read(3, 20, 30, 9)]), 'linearizable');
});

test('a read with an unknown result constrains nothing', () => {
  const unknownRead: RegisterOp = { process: 3, call: 0, ret: null, input: { type: 'read' }, output: null };
  assert.equal(outcome([write(1, 0, 5, 1), unknownRead, read(2, 10, 11, 1)]), 'linearizable');
  assert.equal(outcome([unknownRead]), 'linearizable');
});

test('a recorded result is ignored when the op is flagged unknown', () => {
  const flagged: RegisterOp = { process: 2, call: 0, ret: 4, input: { type: 'read' }, output: { type: 'read', value: 42 }, unknown: true };
  assert.equal(outcome([write(1, 0, 5, 1), flagged]), 'linearizable');
  // The same op with a known outcome is a read of a value never written.
  assert.equal(outcome([write(1, 0, 5, 1), { ...flagged, unknown: false }]), 'violation');
});

test('many unknown writes, of which only the last few are ever seen, stay cheap to check', () => {
  const history: RegisterOp[] = [];
  for (let i = 0; i < 40; i++) history.push(timedOutWrite(100 + i, i * 10, i * 10 + 5, `u${i}`));
  for (let i = 0; i < 40; i++) history.push(read(1, i * 10 + 6, i * 10 + 7, i < 35 ? null : `u${i}`));
  // The first 35 never took effect, the rest did just after their call. Trying unknown ops only
  // after the known candidates keeps the search from placing them early and backtracking.
  const result = checkHistory(registerModel, history);
  assert.equal(result.outcome, 'linearizable');
  assert.ok(result.stats.steps < 1_000_000, `took ${result.stats.steps} steps`);
});
