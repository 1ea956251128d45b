// Test support: terse constructors for register histories, so each test reads like a timeline.
import type { HistoryOp, RegisterInput, RegisterOutput, Value } from '../../src/check/index.js';

export type RegisterOp = HistoryOp<RegisterInput, RegisterOutput>;

export function write(process: number, call: number, ret: number, value: Value): RegisterOp {
  return { process, call, ret, input: { type: 'write', value }, output: { type: 'write' } };
}

export function read(process: number, call: number, ret: number, value: Value | null): RegisterOp {
  return { process, call, ret, input: { type: 'read' }, output: { type: 'read', value } };
}

export function cas(
  process: number,
  call: number,
  ret: number,
  expected: Value | null,
  value: Value,
  ok: boolean,
): RegisterOp {
  return { process, call, ret, input: { type: 'cas', expected, value }, output: { type: 'cas', ok } };
}

/** A write whose client timed out: `ret` is when it gave up, or null if it never heard back. */
export function timedOutWrite(process: number, call: number, ret: number | null, value: Value): RegisterOp {
  return { process, call, ret, input: { type: 'write', value }, output: null, unknown: true };
}

export function timedOutCas(process: number, call: number, expected: Value | null, value: Value): RegisterOp {
  return { process, call, ret: null, input: { type: 'cas', expected, value }, output: null };
}
