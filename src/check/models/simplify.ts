// Verdict-preserving rewrites of one key's history for value-holding models (register, map).
// Both lean on a property of the data, not of the search: values are compared only for
// equality with values that ops name (read results, CAS expectations).
//
// 1. Pinning observed timeouts: when a value has exactly one writer, that writer's outcome is
//    unknown, and some op with a known outcome saw the value (a read returned it, a CAS that
//    succeeded expected it), the write MUST have taken effect, and before that op returned. It
//    becomes a known op that returns then. This turns a lingering op the search would try
//    everywhere into an ordinary one.
// 2. Collapsing unobserved values: values nobody reads or expects all get one name (UNOBSERVED),
//    so states and timed-out writes that differ only in such values look alike to the cache and
//    to the symmetry rule of the search.
import { isUnknownOutcome } from '../history.js';
import type { HistoryOp } from '../types.js';
import { UNOBSERVED, type Value } from './value.js';

export interface ValueAccess<I, O> {
  /** The value the op writes if it takes effect (and succeeds); undefined for none. */
  written(input: I): Value | null | undefined;
  /** Values the op compares the state with: its read result, its CAS expectation. */
  mentioned(input: I, output: O | null): readonly (Value | null)[];
  /** A value a KNOWN-outcome op proves the state held before it returned. */
  witnessed(input: I, output: O): Value | null | undefined;
  withWritten(input: I, value: Value): I;
  /** The output the op must have had if it took effect (a write's ok, a CAS's success). */
  appliedOutput(input: I): O;
}

export function simplifyValueHistory<I, O>(ops: readonly HistoryOp<I, O>[], access: ValueAccess<I, O>): readonly HistoryOp<I, O>[] {
  const writers = new Map<Value, number[]>();
  const mentioned = new Set<Value | null>([null]);
  ops.forEach((op, i) => {
    const value = access.written(op.input);
    if (value !== undefined && value !== null) {
      const list = writers.get(value) ?? [];
      list.push(i);
      writers.set(value, list);
    }
    // Outputs of unknown ops are ignored by the search, but naming them costs only speed.
    for (const v of access.mentioned(op.input, op.output)) mentioned.add(v);
  });
  if (mentioned.has(UNOBSERVED) || writers.has(UNOBSERVED)) return ops;

  const deadline = new Map<number, number>(); // unique unknown writer → earliest witness return
  ops.forEach((op, i) => {
    if (isUnknownOutcome(op)) return;
    const seen = access.witnessed(op.input, op.output as O);
    if (seen === undefined || seen === null) return;
    const only = writers.get(seen);
    if (only === undefined || only.length !== 1 || only[0] === i) return;
    const w = only[0] as number;
    if (!isUnknownOutcome(ops[w] as HistoryOp<I, O>)) return;
    deadline.set(w, Math.min(deadline.get(w) ?? Infinity, op.ret as number));
  });

  let changed = false;
  const out = ops.map((op, i) => {
    const by = deadline.get(i);
    // A witness that returned before the write was even called proves a violation; leave the
    // op as it is and let the search find it.
    if (by !== undefined && by >= op.call) {
      changed = true;
      return { process: op.process, call: op.call, ret: by, input: op.input, output: access.appliedOutput(op.input) };
    }
    const value = access.written(op.input);
    if (value !== undefined && !mentioned.has(value)) {
      changed = true;
      return { ...op, input: access.withWritten(op.input, UNOBSERVED) };
    }
    return op;
  });
  return changed ? out : ops;
}
