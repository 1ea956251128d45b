// A shortcut to a violation the search would need millions of steps to prove: an op with a known
// outcome that no state the key can ever be in allows (a read of a value nobody wrote, a
// compare-and-set that succeeded on a value nobody wrote). Such an op can never be placed, so no
// linearization exists. Proving that by search means exhausting every order of every op before
// it, which on a busy key with many timed-out writes runs out of budget.
//
// The states are over-approximated: the closure of the initial state under every op of the key,
// in any order and any number of times (unknown ops with any output, known ops with theirs). Any
// state a real linearization passes through is in that set, so "allowed from none of them" is
// sound. The closure is small for registers and maps (one state per value written) and is
// abandoned past `maxStates` (a model whose state grows with each op, such as a set of adds).
import { isUnknownOutcome } from './history.js';
import { searchLinearization, type Budget, type DeepestPoint } from './search.js';
import type { HistoryOp, Model } from './types.js';

/** The local index of an op with a known outcome allowed from no reachable state, or null (none, or gave up). */
export function findImpossibleOp<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], budget: Budget, maxStates = 256): number | null {
  const states: S[] = [];
  const byHash = new Map<number, S[]>();
  const add = (state: S): void => {
    const h = model.hash(state) | 0;
    const bucket = byHash.get(h);
    if (bucket === undefined) byHash.set(h, [state]);
    else if (bucket.some((s) => model.equal(s, state))) return;
    else bucket.push(state);
    states.push(state);
  };
  add(model.init());
  // Worklist: every state found is stepped through every op once.
  for (let i = 0; i < states.length; i++) {
    const state = states[i] as S;
    for (const op of ops) {
      const step = model.step(state, op.input, isUnknownOutcome(op) ? null : op.output);
      if (step.ok) add(step.state);
      if (states.length > maxStates) return null;
    }
    if (!budget.charge(ops.length)) return null;
  }
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as HistoryOp<I, O>;
    if (isUnknownOutcome(op)) continue;
    if (!states.some((state) => model.step(state, op.input, op.output).ok)) return i;
  }
  return null;
}

/** Search steps spent looking for a good report once an impossible op has settled the verdict. */
const REPORT_STEPS = 1_000_000;

/**
 * The point to report when op `r` can never be placed: `r` stuck right where it must be placed,
 * after a legal prefix. The prefix comes from a linearization of the other ops: its shortest
 * head holding every known op that returned before `r` did (each of those must precede the point
 * where `r` is due). When the other ops have no linearization within the report budget, the empty
 * prefix: still true, since `r` fits after no prefix at all.
 */
export function impossibleOpPoint<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], r: number, budget: Budget): DeepestPoint<S> {
  const stuck = ops[r] as HistoryOp<I, O>;
  const due = stuck.ret as number; // known outcome, so it returned
  const toLocal = (j: number): number => (j < r ? j : j + 1);
  const others = ops.filter((_, i) => i !== r);
  let prefix: number[] = [];
  const found = searchLinearization(model, others, budget, REPORT_STEPS);
  if (found.kind === 'linearizable') {
    const order = found.order.map(toLocal);
    let end = 0;
    order.forEach((i, at) => {
      const op = ops[i] as HistoryOp<I, O>;
      if (!isUnknownOutcome(op) && (op.ret as number) < due) end = at + 1;
    });
    prefix = order.slice(0, end);
  }
  let state = model.init();
  for (const i of prefix) {
    const op = ops[i] as HistoryOp<I, O>;
    const step = model.step(state, op.input, isUnknownOutcome(op) ? null : op.output);
    if (!step.ok) throw new Error(`the checker's own linearization does not replay at op ${i}`);
    state = step.state;
  }
  const inPrefix = new Set(prefix);
  const pending: number[] = [];
  for (let i = 0; i < ops.length; i++) if (i !== r && !inPrefix.has(i) && (ops[i] as HistoryOp<I, O>).call <= due) pending.push(i);
  return { prefix, stuck: r, pending, state };
}
