// Shared test helpers: a driver that applies commands as consecutive log entries, and
// fast-check arbitraries for keys, values and commands.
import fc from 'fast-check';
import { KvStateMachine, encodeCommand, isWellFormedKey, type Command, type KvResult, type KvStateMachineOptions, type TxnCompare, type TxnOp } from '../../src/kv/index.js';
import type { Entry } from '../../src/raft/types.js';

const encoder = new TextEncoder();

export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

export function entryOf(index: number, cmd: Command | null, type: Entry['type'] = 'normal'): Entry {
  return { index, term: 1, type, data: cmd === null ? new Uint8Array(0) : encodeCommand(cmd) };
}

/** A command without its time: the driver stamps its own clock. */
export type UntimedCommand = Command extends infer C ? (C extends Command ? Omit<C, 'time'> & { time?: number } : never) : never;

/** Applies commands at consecutive indexes starting at 1, with a settable log clock. */
export class Driver {
  readonly sm: KvStateMachine;
  index = 0;
  time = 1_000_000;

  constructor(options: KvStateMachineOptions = {}) {
    this.sm = new KvStateMachine(options);
  }

  apply(cmd: UntimedCommand): KvResult {
    const full = { ...cmd, time: cmd.time ?? this.time } as Command;
    const result = this.sm.apply(entryOf(++this.index, full));
    if (result === undefined) throw new Error('a command returned no result');
    return result;
  }

  put(key: string, value: string | Uint8Array, extra: Partial<Omit<Extract<Command, { type: 'put' }>, 'type' | 'key' | 'value'>> = {}): KvResult {
    return this.apply({ type: 'put', key, value: typeof value === 'string' ? bytes(value) : value, ...extra });
  }

  del(key: string, extra: Partial<Omit<Extract<Command, { type: 'delete' }>, 'type' | 'key'>> = {}): KvResult {
    return this.apply({ type: 'delete', key, ...extra });
  }
}

// Small alphabets so random sequences collide on keys and exercise updates, deletes and compares.
export const keyArb = fc.constantFrom('a', 'ab', 'abc', 'b', 'b/1', 'b/2', 'é', '😀', '\uffff', 'z');
export const anyKeyArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter(isWellFormedKey);
export const valueArb = fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.constantFrom(bytes('x'), bytes('y'), new Uint8Array([0xff, 0x00, 0xfe])));
const indexArb = fc.nat({ max: 40 });
/** Records with Object.prototype, so deepStrictEqual compares them with decoded commands. */
const plain = { noNullPrototype: true } as const;

export const compareArb: fc.Arbitrary<TxnCompare> = fc.oneof(
  fc.record({ key: keyArb, target: fc.constant('value' as const), op: fc.constantFrom('=', '!=', '<', '>'), value: valueArb }, plain),
  fc.record(
    { key: keyArb, target: fc.constantFrom('version', 'createIndex', 'modIndex', 'createRevision', 'modRevision', 'lease'), op: fc.constantFrom('=', '!=', '<', '>'), value: fc.nat({ max: 10 }) },
    plain,
  ),
) as fc.Arbitrary<TxnCompare>;

export const txnOpArb: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb }, plain),
  fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb, lease: fc.integer({ min: 1, max: 3 }) }, plain),
  fc.record({ type: fc.constant('delete' as const), key: keyArb }, plain),
  fc.record({ type: fc.constant('get' as const), key: keyArb }, plain),
  fc.record({ type: fc.constant('range' as const), prefix: fc.constantFrom('', 'a', 'b/'), limit: fc.integer({ min: 1, max: 4 }) }, plain),
  fc.record({ type: fc.constant('deleteRange' as const), start: fc.constantFrom('', 'a', 'b/', 'é'), end: fc.constantFrom(null, 'b', 'b0', 'z', '😀') }, plain),
);

const idempotencyArb = fc.option(fc.constantFrom('c1/1', 'c1/2', 'c2/1', 'c2/2', 'c3/9'), { nil: undefined });
const timeArb = fc.integer({ min: 0, max: 2_000_000 });

function withOptional<T extends object>(base: T, optional: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) out[k] = v;
  return out as unknown as T;
}

export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc
    .record({
      key: keyArb,
      value: valueArb,
      time: timeArb,
      idempotencyKey: idempotencyArb,
      prevValue: fc.option(valueArb, { nil: undefined }),
      prevIndex: fc.option(indexArb, { nil: undefined }),
      prevExist: fc.option(fc.boolean(), { nil: undefined }),
      lease: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    })
    .map(({ key, value, time, ...opt }) => withOptional<Command>({ type: 'put', key, value, time }, opt)),
  fc
    .record({
      key: keyArb,
      time: timeArb,
      idempotencyKey: idempotencyArb,
      prevValue: fc.option(valueArb, { nil: undefined }),
      prevIndex: fc.option(indexArb, { nil: undefined }),
    })
    .map(({ key, time, ...opt }) => withOptional<Command>({ type: 'delete', key, time }, opt)),
  fc
    .record({
      time: timeArb,
      idempotencyKey: idempotencyArb,
      compare: fc.array(compareArb, { maxLength: 3 }),
      success: fc.array(txnOpArb, { maxLength: 4 }),
      failure: fc.array(txnOpArb, { maxLength: 4 }),
      replyLimit: fc.option(fc.nat({ max: 2000 }), { nil: undefined }),
    })
    .map(({ time, idempotencyKey, compare, success, failure, replyLimit }) =>
      withOptional<Command>({ type: 'txn', time, compare, success, failure }, { idempotencyKey, replyLimit }),
    ),
  // Revisions only grow to about the number of commands: small revisions hit, miss and repeat.
  fc.record({ type: fc.constant('compact' as const), time: timeArb, revision: fc.integer({ min: 1, max: 25 }) }, plain),
  fc.record({ type: fc.constant('leaseGrant' as const), time: timeArb, id: fc.integer({ min: 1, max: 3 }), ttlSeconds: fc.integer({ min: 1, max: 60 }) }, plain),
  fc
    .record({ time: timeArb, id: fc.integer({ min: 1, max: 3 }), expired: fc.option(fc.constant(true), { nil: undefined }) })
    .map(({ time, id, expired }) => withOptional<Command>({ type: 'leaseRevoke', time, id }, { expired })),
);
