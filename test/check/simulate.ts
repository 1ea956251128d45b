// Test support: histories recorded from a simulated linearizable execution. Clients issue ops
// with random latencies; each op takes effect at one random instant inside its [call, ret]
// window (or, for a timed-out op, any time after its call, or never) against a real sequential
// map, and the client records what that map answered. By construction every such history is
// linearizable, with many overlapping ops.
import { Rng } from '../../src/sim/random.js';
import type { HistoryOp, KvInput, KvOutput, RegisterInput, RegisterOutput, Value } from '../../src/check/index.js';

export interface SimulateOptions {
  readonly seed: number;
  readonly ops: number;
  readonly clients: number;
  readonly keys: number;
  /** Share of ops whose outcome the client never learns. */
  readonly unknownRate?: number;
  /** Longest op latency; think time between a client's ops is up to a fifth of it. */
  readonly maxLatency?: number;
  /** Whether to issue deletes (and CAS-deletes); off for register histories. */
  readonly deletes?: boolean;
}

export type KvHistory = HistoryOp<KvInput, KvOutput>[];

export function simulateKvHistory(options: SimulateOptions): KvHistory {
  const random = new Rng(options.seed).asFunction();
  const unknownRate = options.unknownRate ?? 0;
  const maxLatency = options.maxLatency ?? 10;
  const pick = (n: number): number => Math.floor(random() * n);
  const freeAt: number[] = Array.from({ length: options.clients }, () => random() * maxLatency);
  const written = new Map<string, Value[]>();
  let counter = 0;

  interface Pending {
    index: number;
    applyAt: number | null;
  }
  const history: KvHistory = [];
  const pending: Pending[] = [];
  for (let i = 0; i < options.ops; i++) {
    let client = 0;
    for (let c = 1; c < options.clients; c++) if ((freeAt[c] as number) < (freeAt[client] as number)) client = c;
    const call = freeAt[client] as number;
    const latency = 0.1 + random() * maxLatency;
    const ret = call + latency;
    const key = `k${pick(options.keys)}`;
    const values = written.get(key) ?? [];
    const roll = random();
    let input: KvInput;
    if (roll < 0.45) input = { type: 'get', key };
    else if (roll < 0.75 || (!options.deletes && roll < 0.8)) {
      const value = `v${++counter}`;
      values.push(value);
      written.set(key, values);
      input = { type: 'put', key, value };
    } else if (options.deletes === true && roll < 0.8) input = { type: 'delete', key };
    else {
      // Expect a recent value, sometimes a stale one or absence, so CAS both wins and loses.
      const expected = values.length === 0 || random() < 0.1 ? null : (values[values.length - 1 - pick(Math.min(3, values.length))] as Value);
      const deleting = options.deletes === true && random() < 0.2;
      const value = deleting ? null : `v${++counter}`;
      if (value !== null) {
        values.push(value);
        written.set(key, values);
      }
      input = { type: 'cas', key, expected, value };
    }
    const isUnknown = random() < unknownRate;
    let applyAt: number | null = call + random() * latency;
    if (isUnknown) applyAt = random() < 0.5 ? null : call + random() * latency * 3;
    const gaveUp = random() < 0.5;
    history.push({
      process: client,
      call,
      ret: isUnknown && !gaveUp ? null : ret,
      input,
      output: null,
      ...(isUnknown ? { unknown: true } : {}),
    });
    pending.push({ index: i, applyAt });
    freeAt[client] = ret + random() * maxLatency * 0.2;
  }

  // Apply in linearization order against a real map and record each answer.
  const store = new Map<string, Value>();
  pending.sort((a, b) => (a.applyAt ?? Infinity) - (b.applyAt ?? Infinity));
  for (const p of pending) {
    if (p.applyAt === null) continue;
    const op = history[p.index] as HistoryOp<KvInput, KvOutput>;
    const output = applyKv(store, op.input);
    if (op.unknown !== true) history[p.index] = { ...op, output };
  }
  return history;
}

function applyKv(store: Map<string, Value>, input: KvInput): KvOutput {
  const current = store.get(input.key) ?? null;
  switch (input.type) {
    case 'get':
      return { type: 'get', value: current };
    case 'put':
      store.set(input.key, input.value);
      return { type: 'put' };
    case 'delete':
      store.delete(input.key);
      return { type: 'delete', deleted: current !== null };
    case 'cas': {
      if (current !== input.expected) return { type: 'cas', ok: false };
      if (input.value === null) store.delete(input.key);
      else store.set(input.key, input.value);
      return { type: 'cas', ok: true };
    }
  }
}

/** The same execution against a single register: one key, no deletes. */
export function simulateRegisterHistory(
  options: Omit<SimulateOptions, 'keys' | 'deletes'>,
): HistoryOp<RegisterInput, RegisterOutput>[] {
  return simulateKvHistory({ ...options, keys: 1, deletes: false }).map((op) => ({
    ...op,
    input: toRegisterInput(op.input),
    output: op.output === null ? null : toRegisterOutput(op.output),
  }));
}

function toRegisterInput(input: KvInput): RegisterInput {
  switch (input.type) {
    case 'get':
      return { type: 'read' };
    case 'put':
      return { type: 'write', value: input.value };
    case 'cas':
      return { type: 'cas', expected: input.expected, value: input.value as Value };
    case 'delete':
      throw new Error('registers have no delete');
  }
}

function toRegisterOutput(output: KvOutput): RegisterOutput {
  switch (output.type) {
    case 'get':
      return { type: 'read', value: output.value };
    case 'put':
      return { type: 'write' };
    case 'cas':
      return { type: 'cas', ok: output.ok };
    case 'delete':
      throw new Error('registers have no delete');
  }
}
