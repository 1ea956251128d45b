// Turns the deepest point of a failed search into what a person reads: the ops of the failing key
// that overlap the place where no linearization could continue, each tagged with its role.
import { effectiveReturn, isUnknownOutcome } from './history.js';
import type { DeepestPoint } from './search.js';
import type { HistoryOp, Model, Violation, WindowOp, WindowRole } from './types.js';

export function buildViolation<S, I, O>(
  model: Model<S, I, O>,
  history: readonly HistoryOp<I, O>[],
  key: string,
  indexes: readonly number[],
  deepest: DeepestPoint<S>,
  contextOps: number,
): Violation<I, O> {
  const opAt = (local: number): HistoryOp<I, O> => history[indexes[local] as number] as HistoryOp<I, O>;
  const order = new Map<number, number>();
  deepest.prefix.forEach((local, i) => order.set(local, i + 1));
  const stuckAt = effectiveReturn(opAt(deepest.stuck));

  // The window opens at the earliest call among the ops that could not go next and the last few
  // of the prefix, and closes when the stuck op returned: everything that overlaps it matters.
  const tailFrom = Math.max(1, deepest.prefix.length - contextOps + 1);
  const anchors = [deepest.stuck, ...deepest.pending, ...deepest.prefix.slice(tailFrom - 1)];
  let start = Infinity;
  for (const local of anchors) start = Math.min(start, opAt(local).call);

  const window: WindowOp<I, O>[] = [];
  for (let local = 0; local < indexes.length; local++) {
    const op = opAt(local);
    if (op.call > stuckAt || effectiveReturn(op) < start) continue;
    const place = order.get(local) ?? null;
    const isUnknown = isUnknownOutcome(op);
    // An unknown op placed long before the window would otherwise stretch into every window.
    if (place !== null && isUnknown && place < tailFrom && op.call < start) continue;
    let role: WindowRole;
    if (local === deepest.stuck) role = 'stuck';
    else if (place !== null) role = 'linearized';
    else role = 'pending'; // called before the stuck op returned, never placed
    window.push({
      index: indexes[local] as number,
      op,
      role,
      order: place,
      isUnknownOutcome: isUnknown,
      description: model.describe(op.input, isUnknown ? null : op.output),
    });
  }
  window.sort((a, b) => a.op.call - b.op.call || a.index - b.index);

  return {
    key,
    model: model.name,
    keyOpCount: indexes.length,
    prefix: deepest.prefix.map((local) => indexes[local] as number),
    stuck: indexes[deepest.stuck] as number,
    stateAfterPrefix: describeState(model, replayPrefix(model, deepest, opAt)),
    window,
  };
}

/**
 * The state after the prefix, replayed over the ops as recorded. The search ran over the
 * model's simplified history, whose states may name values by a stand-in (UNOBSERVED); a person
 * reading the report wants the real value. Falls back to the search's state should a step the
 * search took not replay (it would mean simplify changed a verdict).
 */
function replayPrefix<S, I, O>(model: Model<S, I, O>, deepest: DeepestPoint<S>, opAt: (local: number) => HistoryOp<I, O>): S {
  let state = model.init();
  for (const local of deepest.prefix) {
    const op = opAt(local);
    const step = model.step(state, op.input, isUnknownOutcome(op) ? null : op.output);
    if (!step.ok) return deepest.state;
    state = step.state;
  }
  return state;
}

function describeState<S, I, O>(model: Model<S, I, O>, state: S): string {
  if (model.describeState !== undefined) return model.describeState(state);
  try {
    return JSON.stringify(state) ?? String(state);
  } catch {
    return String(state);
  }
}
