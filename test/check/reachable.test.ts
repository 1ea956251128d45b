// The impossible-op shortcut (src/check/reachable.ts): an op with a known outcome that no
// reachable state allows settles a key as a violation without exhausting every order, and the
// report blames that op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, effectiveReturn, isUnknownOutcome, kvModel, registerModel, type HistoryOp, type KvInput, type KvOutput } from '../../src/check/index.js';
import { findImpossibleOp } from '../../src/check/reachable.js';
import { Budget } from '../../src/check/search.js';
import { cas, read, timedOutWrite, write, type RegisterOp } from './ops.js';
import { simulateKvHistory } from './simulate.js';

const roomy = (): Budget => new Budget(1_000_000, 60_000, () => performance.now());

test('a read of a value no op wrote is found impossible', () => {
  const history: RegisterOp[] = [write(1, 0, 5, 1), timedOutWrite(2, 3, null, 2), read(3, 10, 12, 1), read(3, 20, 22, 7)];
  assert.equal(findImpossibleOp(registerModel, history, roomy()), 3);
});

test('values only a timed-out write or a successful CAS could produce are possible', () => {
  const history: RegisterOp[] = [write(1, 0, 5, 1), timedOutWrite(2, 3, null, 2), cas(1, 6, 8, 2, 3, true), read(3, 20, 22, 3), read(3, 30, 32, 2)];
  assert.equal(findImpossibleOp(registerModel, history, roomy()), null);
});

test('a CAS that succeeded on a value nobody wrote is found impossible', () => {
  const history: RegisterOp[] = [write(1, 0, 5, 1), cas(2, 6, 8, 9, 3, true)];
  assert.equal(findImpossibleOp(registerModel, history, roomy()), 1);
});

test('the closure gives up past its state limit rather than grow without bound', () => {
  const history: RegisterOp[] = Array.from({ length: 20 }, (_, i) => write(1, i * 10, i * 10 + 1, i));
  history.push(read(2, 500, 501, 999));
  assert.equal(findImpossibleOp(registerModel, history, roomy(), 10), null);
  assert.equal(findImpossibleOp(registerModel, history, roomy()), 20);
});

// A busy key: 10 clients, a fifth of the ops timed out, one read changed to a value never
// written. The plain search needs over 17 million steps to exhaust every order before that read
// (it ran out of a 20 s budget); the shortcut proves it in a few hundred thousand.
test('a never-written read on a busy key with many timed-out writes is proven a violation within a small step budget, and blamed', () => {
  const history: HistoryOp<KvInput, KvOutput>[] = simulateKvHistory({ seed: 1658737611, ops: 258, clients: 10, keys: 1, unknownRate: 0.2, maxLatency: 21, deletes: true });
  const reads = history.flatMap((op, i) => (op.input.type === 'get' && !isUnknownOutcome(op) ? [i] : []));
  const target = reads[Math.floor(reads.length * 0.8)] as number;
  const op = history[target] as HistoryOp<KvInput, KvOutput>;
  history[target] = { ...op, output: { type: 'get', value: 'never-written' } };

  const result = checkHistory(kvModel, history, { maxSteps: 3_000_000, timeLimitMs: 120_000 });
  assert.equal(result.outcome, 'violation', `got ${result.outcome} after ${result.stats.steps} steps`);
  assert.ok(result.outcome === 'violation');
  assert.equal(result.violation.stuck, target, 'the report blames the impossible read');
  assert.ok(result.violation.window.some((w) => w.index === target));

  // The reported prefix is a legal linearization prefix: each op legal where it stands, and no op
  // left out that had to come before it.
  let state = kvModel.init();
  const placed = new Set<number>();
  for (const i of result.violation.prefix) {
    const at = history[i] as HistoryOp<KvInput, KvOutput>;
    for (let j = 0; j < history.length; j++) {
      if (!placed.has(j) && j !== i) assert.ok(effectiveReturn(history[j] as HistoryOp<KvInput, KvOutput>) >= at.call, `op ${j} had to precede op ${i}`);
    }
    const step = kvModel.step(state, at.input, isUnknownOutcome(at) ? null : at.output);
    assert.ok(step.ok, `op ${i} is legal where the prefix puts it`);
    state = step.state;
    placed.add(i);
  }
  assert.equal(result.violation.stateAfterPrefix, kvModel.describeState?.(state));
});
