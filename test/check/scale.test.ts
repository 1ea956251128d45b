// Issue 6's bound: a history of 10,000 operations over 10 keys from 10 clients is decided, and
// within a fixed search-step budget (steps, not seconds, so the bound is the same on a busy
// machine; `npm run bench:check` prints the time: about 30 ms, 150 ms with 5% unknown outcomes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, kvModel } from '../../src/check/index.js';
import { simulateKvHistory } from './simulate.js';

const STEP_BUDGET = 5_000_000;

for (const unknownRate of [0, 0.05]) {
  test(`10,000 ops, 10 keys, 10 clients, ${unknownRate * 100}% unknown outcomes: linearizable within ${STEP_BUDGET.toLocaleString('en-US')} steps`, () => {
    for (const seed of [1, 2, 3]) {
      const history = simulateKvHistory({ seed, ops: 10_000, clients: 10, keys: 10, unknownRate, maxLatency: 20, deletes: true });
      const result = checkHistory(kvModel, history, { maxSteps: STEP_BUDGET, timeLimitMs: 300_000 });
      assert.equal(result.outcome, 'linearizable', `seed ${seed}`);
      assert.equal(history.length, 10_000);
      // Unknown-outcome reads constrain nothing and are left out of the search.
      assert.ok(result.stats.ops > 9_000 && result.stats.ops <= 10_000, `searched ${result.stats.ops} ops`);
      assert.equal(result.stats.keys, 10);
    }
  });
}

test('the same 10,000-op history with one read changed to a value never written is a violation on that key', () => {
  const history = simulateKvHistory({ seed: 7, ops: 10_000, clients: 10, keys: 10, unknownRate: 0.05, maxLatency: 20, deletes: true });
  const at = history.findIndex((op, i) => i > 5_000 && op.input.type === 'get' && op.output !== null);
  const op = history[at]!;
  history[at] = { ...op, output: { type: 'get', value: 'never-written' } };
  const result = checkHistory(kvModel, history, { maxSteps: STEP_BUDGET, timeLimitMs: 300_000 });
  assert.equal(result.outcome, 'violation');
  assert.ok(result.outcome === 'violation');
  assert.equal(result.key, (op.input as { key: string }).key);
});
