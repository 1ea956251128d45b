// Test support: the definition of linearizability checked by exhaustion (Herlihy & Wing 1990),
// for histories small enough to try every order. The checker must agree with it exactly.
import { effectiveReturn, isUnknownOutcome, type HistoryOp, type Model } from '../../src/check/index.js';

/** True when some order of the ops respects real time and the model; unknown ops may be left out. */
export function isLinearizableByExhaustion<S, I, O>(model: Model<S, I, O>, history: readonly HistoryOp<I, O>[]): boolean {
  const n = history.length;
  const known = history.map((op) => !isUnknownOutcome(op));
  const placed = new Array<boolean>(n).fill(false);
  const mayGoNext = (i: number): boolean => {
    for (let j = 0; j < n; j++) {
      // An op that returned strictly before i was called must come first.
      if (j !== i && !placed[j] && effectiveReturn(history[j] as HistoryOp<I, O>) < (history[i] as HistoryOp<I, O>).call) return false;
    }
    return true;
  };
  const search = (state: S, knownLeft: number): boolean => {
    if (knownLeft === 0) return true;
    for (let i = 0; i < n; i++) {
      if (placed[i] || !mayGoNext(i)) continue;
      const op = history[i] as HistoryOp<I, O>;
      const result = model.step(state, op.input, known[i] ? op.output : null);
      if (!result.ok) continue;
      placed[i] = true;
      if (search(result.state, knownLeft - (known[i] ? 1 : 0))) return true;
      placed[i] = false;
    }
    return false;
  };
  return search(model.init(), known.filter(Boolean).length);
}
