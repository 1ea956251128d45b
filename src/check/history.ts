// Reading a recorded history: validation, which ops have an unknown outcome, and the split by
// key that P-compositionality allows (Horn & Kroening 2015; locality, Herlihy & Wing 1990 §3.3).
import type { HistoryOp, Model } from './types.js';

export class InvalidHistoryError extends Error {
  readonly code = 'INVALID_HISTORY';
  readonly index: number;
  constructor(index: number, message: string) {
    super(`history op #${index}: ${message}`);
    this.name = new.target.name;
    this.index = index;
  }
}

/** The key under which a model without `keyOf` checks the whole history. */
export const WHOLE_HISTORY_KEY = '*';

/** True when the op may or may not have taken effect, at any time after its call. */
export function isUnknownOutcome<I, O>(op: HistoryOp<I, O>): boolean {
  return op.unknown === true || op.ret === null || op.ret === Infinity || op.output === null;
}

/**
 * The time after which the op can no longer take effect: its return, or never for an unknown
 * outcome, whose request may still be applied after the client gave up.
 */
export function effectiveReturn<I, O>(op: HistoryOp<I, O>): number {
  return isUnknownOutcome(op) ? Infinity : (op.ret as number);
}

export function validateHistory<I, O>(history: readonly HistoryOp<I, O>[]): void {
  for (let i = 0; i < history.length; i++) {
    const op = history[i] as HistoryOp<I, O>;
    if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
      throw new InvalidHistoryError(i, `call time must be a finite number, got ${String(op.call)}`);
    }
    if (op.ret !== null) {
      if (typeof op.ret !== 'number' || Number.isNaN(op.ret)) {
        throw new InvalidHistoryError(i, `return time must be a number or null, got ${String(op.ret)}`);
      }
      if (op.ret < op.call) throw new InvalidHistoryError(i, `returns (${op.ret}) before its call (${op.call})`);
    }
  }
}

/** One key's part of a history: the indexes (into the full history) of the ops to search. */
export interface Partition {
  readonly key: string;
  readonly indexes: readonly number[];
}

/**
 * Splits by `model.keyOf` and drops unknown-outcome reads, which constrain nothing. Partitions
 * come smallest first, so the smallest failing key is the first one found.
 */
export function partitionHistory<S, I, O>(model: Model<S, I, O>, history: readonly HistoryOp<I, O>[]): Partition[] {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i] as HistoryOp<I, O>;
    const key = model.keyOf === undefined ? WHOLE_HISTORY_KEY : model.keyOf(op.input);
    let list = byKey.get(key);
    if (list === undefined) {
      list = [];
      byKey.set(key, list);
    }
    if (isUnknownOutcome(op) && model.isReadOnly?.(op.input) === true) continue;
    list.push(i);
  }
  const parts = [...byKey].map(([key, indexes]) => ({ key, indexes }));
  parts.sort((a, b) => a.indexes.length - b.indexes.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return parts;
}
