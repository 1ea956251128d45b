// The guard against exponential blowup: when the step or time budget runs out the checker says
// 'unknown', never 'linearizable'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, kvModel, registerModel, type HistoryOp, type KvInput, type KvOutput } from '../../src/check/index.js';
import { read, write, type RegisterOp } from './ops.js';

/**
 * Sixteen fully concurrent writes and a final read of a value none wrote: proving it fails means
 * trying every subset of writes before the read, about 2^16 configurations.
 */
function hardHistory(): RegisterOp[] {
  const history: RegisterOp[] = [];
  for (let i = 0; i < 16; i++) history.push(write(i, 0, 100, i));
  history.push(read(99, 50, 200, 'never'));
  return history;
}

test('a step budget that runs out gives unknown, not ok', () => {
  const result = checkHistory(registerModel, hardHistory(), { maxSteps: 10_000 });
  assert.equal(result.ok, false);
  assert.equal(result.outcome, 'unknown');
  assert.ok(result.outcome === 'unknown');
  assert.equal(result.reason, 'max-steps');
  assert.deepEqual(result.uncheckedKeys, ['*']);
});

test('the same history with enough budget is a definite violation', () => {
  const result = checkHistory(registerModel, hardHistory(), { maxSteps: 50_000_000, timeLimitMs: 60_000 });
  assert.equal(result.outcome, 'violation');
});

test('a time budget that runs out gives unknown', () => {
  let clock = 0;
  // Every reading of the clock moves it a second on: the 5 s budget ends within a few checks.
  const result = checkHistory(registerModel, hardHistory(), { timeLimitMs: 5_000, now: () => (clock += 1_000) });
  assert.equal(result.outcome, 'unknown');
  assert.ok(result.outcome === 'unknown');
  assert.equal(result.reason, 'time-limit');
});

test('a violation already proven on a small key wins over a budget that runs out later', () => {
  const history: HistoryOp<KvInput, KvOutput>[] = [
    { process: 1, call: 0, ret: 1, input: { type: 'get', key: 'small' }, output: { type: 'get', value: 'ghost' } },
  ];
  for (let i = 0; i < 16; i++) {
    history.push({ process: i, call: 0, ret: 100, input: { type: 'put', key: 'hard', value: i }, output: { type: 'put' } });
  }
  history.push({ process: 99, call: 50, ret: 200, input: { type: 'get', key: 'hard' }, output: { type: 'get', value: 'never' } });
  const result = checkHistory(kvModel, history, { maxSteps: 10_000 });
  assert.equal(result.outcome, 'violation');
  assert.ok(result.outcome === 'violation');
  assert.deepEqual(result.failingKeys, ['small']);
});

test('keys left unchecked once the budget is gone are listed', () => {
  const history: HistoryOp<KvInput, KvOutput>[] = [];
  for (let i = 0; i < 16; i++) {
    history.push({ process: i, call: 0, ret: 100, input: { type: 'put', key: 'hard', value: i }, output: { type: 'put' } });
  }
  history.push({ process: 99, call: 50, ret: 200, input: { type: 'get', key: 'hard' }, output: { type: 'get', value: 'never' } });
  for (let i = 0; i < 20; i++) {
    history.push({ process: 1, call: 300 + i, ret: 300.5 + i, input: { type: 'put', key: 'later', value: i }, output: { type: 'put' } });
  }
  const result = checkHistory(kvModel, history, { maxSteps: 10_000 });
  assert.equal(result.outcome, 'unknown');
  assert.ok(result.outcome === 'unknown');
  assert.deepEqual(result.uncheckedKeys, ['hard', 'later']);
});
