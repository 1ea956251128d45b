// A single read/write/compare-and-set register: the sequential specification a key's history is
// checked against (the register of Herlihy & Wing 1990, with CAS as in etcd's prevValue writes).
import type { Model, OpDescription, StepResult } from '../types.js';
import { simplifyValueHistory, type ValueAccess } from './simplify.js';
import { formatValue, hashValue, type Value } from './value.js';

export type RegisterState = Value | null;

/** `cas` with `expected: null` succeeds only while the register is empty (prevExist=false). */
export type RegisterInput =
  | { readonly type: 'read' }
  | { readonly type: 'write'; readonly value: Value }
  | { readonly type: 'cas'; readonly expected: Value | null; readonly value: Value };

/** A read of a register never written returns `value: null`. */
export type RegisterOutput =
  | { readonly type: 'read'; readonly value: Value | null }
  | { readonly type: 'write' }
  | { readonly type: 'cas'; readonly ok: boolean };

export const registerModel: Model<RegisterState, RegisterInput, RegisterOutput> = {
  name: 'register',
  init: () => null,
  step: stepRegister,
  equal: (a, b) => a === b,
  hash: hashValue,
  isReadOnly: (input) => input.type === 'read',
  inputKey: (input) => JSON.stringify(input),
  simplify: (ops) => simplifyValueHistory(ops, registerValues),
  describe: describeRegister,
  describeState: formatValue,
};

function stepRegister(
  state: RegisterState,
  input: RegisterInput,
  output: RegisterOutput | null,
): StepResult<RegisterState> {
  // A result of the wrong kind can never be explained; reject rather than guess.
  if (output !== null && output.type !== input.type) return { ok: false, state };
  switch (input.type) {
    case 'read':
      return { ok: output === null || (output.type === 'read' && output.value === state), state };
    case 'write':
      return { ok: true, state: input.value };
    case 'cas': {
      const applies = state === input.expected;
      // Unknown outcome: the CAS took effect iff it could; a failed CAS changes nothing.
      if (output === null || output.type !== 'cas') return { ok: true, state: applies ? input.value : state };
      return { ok: output.ok === applies, state: applies ? input.value : state };
    }
    default: {
      const unreachable: never = input;
      return unreachable;
    }
  }
}

const registerValues: ValueAccess<RegisterInput, RegisterOutput> = {
  written: (input) => (input.type === 'read' ? undefined : input.value),
  mentioned: (input, output) =>
    input.type === 'cas' ? [input.expected] : output?.type === 'read' ? [output.value] : [],
  witnessed: (input, output) =>
    output.type === 'read' ? output.value : input.type === 'cas' && output.type === 'cas' && output.ok ? input.expected : undefined,
  withWritten: (input, value) => (input.type === 'read' ? input : { ...input, value }),
  appliedOutput: (input) => (input.type === 'cas' ? { type: 'cas', ok: true } : input.type === 'write' ? { type: 'write' } : { type: 'read', value: null }),
};

export function describeRegister(input: RegisterInput, output: RegisterOutput | null): OpDescription {
  const op =
    input.type === 'read'
      ? 'read'
      : input.type === 'write'
        ? `write ${formatValue(input.value)}`
        : `cas ${formatValue(input.expected)}→${formatValue(input.value)}`;
  if (output === null) return { op, result: '?' };
  switch (output.type) {
    case 'read':
      return { op, result: formatValue(output.value) };
    case 'write':
      return { op, result: 'ok' };
    case 'cas':
      return { op, result: output.ok ? 'ok' : 'fail' };
    default: {
      const unreachable: never = output;
      return unreachable;
    }
  }
}
