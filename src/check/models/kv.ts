// The key-value map as raftkv serves it (get / put / delete / compare-and-set per key; API.md).
// Ops on different keys never constrain each other, so the checker splits the history by key
// (P-compositionality, Horn & Kroening 2015) and the state it searches over is the value of
// that one key: each key is a register with delete.
import type { Model, OpDescription, StepResult } from '../types.js';
import { simplifyValueHistory, type ValueAccess } from './simplify.js';
import { formatValue, hashValue, type Value } from './value.js';

/** The value of the single key a partition holds; `null` while absent. */
export type KvState = Value | null;

/**
 * `cas`: `expected: null` means "only if absent" (prevExist=false); `value: null` makes it a
 * conditional delete (DELETE with prevValue).
 */
export type KvInput =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: Value }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'cas'; readonly key: string; readonly expected: Value | null; readonly value: Value | null };

/** `get` of an absent key is `value: null` (a 404). `deleted` is checked only when given. */
export type KvOutput =
  | { readonly type: 'get'; readonly value: Value | null }
  | { readonly type: 'put' }
  | { readonly type: 'delete'; readonly deleted?: boolean }
  | { readonly type: 'cas'; readonly ok: boolean };

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  name: 'kv',
  init: () => null,
  step: stepKv,
  equal: (a, b) => a === b,
  hash: hashValue,
  keyOf: (input) => input.key,
  isReadOnly: (input) => input.type === 'get',
  inputKey: (input) => JSON.stringify(input),
  simplify: (ops) => simplifyValueHistory(ops, kvValues),
  describe: describeKv,
  describeState: formatValue,
};

function stepKv(state: KvState, input: KvInput, output: KvOutput | null): StepResult<KvState> {
  if (output !== null && output.type !== input.type) return { ok: false, state };
  switch (input.type) {
    case 'get':
      return { ok: output === null || (output.type === 'get' && output.value === state), state };
    case 'put':
      return { ok: true, state: input.value };
    case 'delete': {
      const deleted = output !== null && output.type === 'delete' ? output.deleted : undefined;
      return { ok: deleted === undefined || deleted === (state !== null), state: null };
    }
    case 'cas': {
      const applies = state === input.expected;
      const after = applies ? input.value : state;
      if (output === null || output.type !== 'cas') return { ok: true, state: after };
      return { ok: output.ok === applies, state: after };
    }
    default: {
      const unreachable: never = input;
      return unreachable;
    }
  }
}

const kvValues: ValueAccess<KvInput, KvOutput> = {
  written: (input) => (input.type === 'put' || input.type === 'cas' ? input.value : undefined),
  mentioned: (input, output) => (input.type === 'cas' ? [input.expected] : output?.type === 'get' ? [output.value] : []),
  witnessed: (input, output) =>
    output.type === 'get' ? output.value : input.type === 'cas' && output.type === 'cas' && output.ok ? input.expected : undefined,
  withWritten: (input, value) => (input.type === 'put' || input.type === 'cas' ? { ...input, value } : input),
  appliedOutput: (input): KvOutput => {
    switch (input.type) {
      case 'put':
        return { type: 'put' };
      case 'cas':
        return { type: 'cas', ok: true };
      case 'delete':
        return { type: 'delete' };
      case 'get':
        return { type: 'get', value: null };
    }
  },
};

export function describeKv(input: KvInput, output: KvOutput | null): OpDescription {
  let op: string;
  switch (input.type) {
    case 'get':
      op = 'get';
      break;
    case 'put':
      op = `put ${formatValue(input.value)}`;
      break;
    case 'delete':
      op = 'delete';
      break;
    case 'cas':
      op = `cas ${formatValue(input.expected)}→${formatValue(input.value)}`;
      break;
    default: {
      const unreachable: never = input;
      return unreachable;
    }
  }
  if (output === null) return { op, result: '?' };
  switch (output.type) {
    case 'get':
      return { op, result: formatValue(output.value) };
    case 'put':
      return { op, result: 'ok' };
    case 'delete':
      return { op, result: output.deleted === undefined ? 'ok' : output.deleted ? 'deleted' : 'absent' };
    case 'cas':
      return { op, result: output.ok ? 'ok' : 'fail' };
    default: {
      const unreachable: never = output;
      return unreachable;
    }
  }
}
