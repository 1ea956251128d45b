// The checker's entry point: validate, split the history by key (P-compositionality, Horn &
// Kroening 2015), search each key for a linearization (search.ts) within one shared budget, and
// report the smallest failing key.
import { isUnknownOutcome, partitionHistory, validateHistory } from './history.js';
import { findImpossibleOp, impossibleOpPoint } from './reachable.js';
import { Budget, searchLinearization, type DeepestPoint, type SearchResult } from './search.js';
import { DEFAULT_CHECK_OPTIONS } from './types.js';
import type { CheckOptions, CheckResult, CheckStats, HistoryOp, Model, Violation } from './types.js';
import { buildViolation } from './window.js';

/**
 * Decides whether `history` is linearizable with respect to `model`.
 *
 * `ok: true` only when every key was searched to the end and each has a linearization. A budget
 * that runs out gives `outcome: 'unknown'`, unless some key was already proven to fail.
 * Throws `InvalidHistoryError` for a malformed history (a non-finite call, a return before its
 * call).
 */
export function checkHistory<S, I, O>(
  model: Model<S, I, O>,
  history: readonly HistoryOp<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  validateHistory(history);
  const maxSteps = options.maxSteps ?? DEFAULT_CHECK_OPTIONS.maxSteps;
  const timeLimitMs = options.timeLimitMs ?? DEFAULT_CHECK_OPTIONS.timeLimitMs;
  const contextOps = options.contextOps ?? DEFAULT_CHECK_OPTIONS.contextOps;
  const now = options.now ?? (() => performance.now());
  const startedAt = now();
  const budget = new Budget(maxSteps, timeLimitMs, now);

  const parts = partitionHistory(model, history);
  const failingKeys: string[] = [];
  const uncheckedKeys: string[] = [];
  let violation: Violation<I, O> | null = null;
  let searchedOps = 0;
  // Smallest key first: the first violation found is the smallest one to show.
  for (const part of parts) {
    if (budget.exhausted !== null) {
      uncheckedKeys.push(part.key);
      continue;
    }
    const ops = part.indexes.map((i) => history[i] as HistoryOp<I, O>);
    searchedOps += ops.length;
    const simplified = model.simplify?.(ops) ?? ops;
    if (simplified.length !== ops.length) throw new RangeError(`${model.name}.simplify changed the number of ops`);
    const result = searchKey(model, simplified, budget);
    if (result.kind === 'unknown') {
      uncheckedKeys.push(part.key);
    } else if (result.kind === 'violation') {
      failingKeys.push(part.key);
      if (violation === null) {
        let deepest = result.deepest;
        // simplify keeps the verdict but may pin a timed-out write as known; a report must speak
        // of the history as recorded, so when it would blame such an op, search the raw ops.
        if (simplified !== ops && !reportFits(model, ops, deepest)) {
          const raw = searchKey(model, ops, budget);
          if (raw.kind === 'violation') deepest = raw.deepest;
        }
        violation = buildViolation(model, history, part.key, part.indexes, deepest, contextOps);
      }
    }
  }

  const stats: CheckStats = {
    keys: parts.length,
    ops: searchedOps,
    steps: budget.steps,
    elapsedMs: now() - startedAt,
  };
  if (violation !== null) {
    return { ok: false, outcome: 'violation', key: violation.key, failingKeys, violation, stats };
  }
  if (uncheckedKeys.length > 0) {
    return { ok: false, outcome: 'unknown', reason: budget.exhausted ?? 'max-steps', uncheckedKeys, stats };
  }
  return { ok: true, outcome: 'linearizable', stats };
}

/** Search steps before looking for an op no state allows (reachable.ts): most keys finish well within it. */
const PROBE_STEPS = 200_000;

/**
 * One key: a short search first; if it does not finish, a check for an op that can never be
 * placed (then the key fails, reported where that op is due); else the full search with what is
 * left of the budget.
 */
function searchKey<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], budget: Budget): SearchResult<S> {
  const probe = searchLinearization(model, ops, budget, PROBE_STEPS);
  if (probe.kind !== 'unknown' || budget.exhausted !== null) return probe;
  const impossible = findImpossibleOp(model, ops, budget);
  if (impossible !== null) return { kind: 'violation', deepest: impossibleOpPoint(model, ops, impossible, budget) };
  if (budget.exhausted !== null) return probe;
  return searchLinearization(model, ops, budget);
}

/** Whether a report found on simplified ops blames a known op and replays on the raw ops. */
function reportFits<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], deepest: DeepestPoint<S>): boolean {
  if (isUnknownOutcome(ops[deepest.stuck] as HistoryOp<I, O>)) return false;
  let state = model.init();
  for (const local of deepest.prefix) {
    const op = ops[local] as HistoryOp<I, O>;
    const step = model.step(state, op.input, isUnknownOutcome(op) ? null : op.output);
    if (!step.ok) return false;
    state = step.state;
  }
  return true;
}
