// The search for a linearization of one key's history: Wing & Gong 1993's backtracking search in
// the "just-in-time" form of Lowe 2017 §2–3. Calls and returns sit in one doubly linked list in
// time order; an op may go next when its call precedes the first return still in the list (no
// other op had to finish before it began). Linearizing an op lifts its call and return out of the
// list; backtracking unlifts them (dancing links, so both are O(1)). The cache of (linearized
// set, state) pairs prunes orders that reach a configuration already explored.
//
// Unknown outcomes: such an op has no return event, so it never forces the search to place it,
// and the search succeeds once every op with a known outcome is placed (the rest never took
// effect). Unknown ops sit in a second list and are tried after the known candidates: placing a
// timed-out write as late as possible is nearly always what explains later reads, and trying it
// first would make the search place it early, then backtrack across everything since.
//
// Symmetry among unknown ops: two unknown ops whose inputs have the same effect
// (`model.inputKey`) are interchangeable once both are called, so members of such a class are
// placed in call order only: a member is a candidate only when every earlier one is placed.
// With the cache's dominance rule (cache.ts) this keeps many timed-out writes from multiplying
// the configurations.
import { ConfigurationCache, LinearizedSet } from './cache.js';
import { isUnknownOutcome } from './history.js';
import type { HistoryOp, Model } from './types.js';

/** The step and time budget shared by every key of one check. */
export class Budget {
  steps = 0;
  exhausted: 'max-steps' | 'time-limit' | null = null;
  private readonly maxSteps: number;
  private readonly deadline: number;
  private readonly now: () => number;

  constructor(maxSteps: number, timeLimitMs: number, now: () => number) {
    this.maxSteps = maxSteps;
    this.now = now;
    this.deadline = now() + timeLimitMs;
  }

  /** Spends `steps`; false once the budget is gone (and stays gone). */
  charge(steps: number): boolean {
    if (this.exhausted !== null) return false;
    this.steps += steps;
    if (this.steps > this.maxSteps) this.exhausted = 'max-steps';
    else if (this.now() > this.deadline) this.exhausted = 'time-limit';
    return this.exhausted === null;
  }
}

/** The configuration with the most ops placed at which the search had to backtrack. */
export interface DeepestPoint<S> {
  /** Local op indexes in linearization order. */
  readonly prefix: readonly number[];
  /** The op whose return blocked every remaining candidate. */
  readonly stuck: number;
  /** Other ops that were candidates there (called before the stuck op returned). */
  readonly pending: readonly number[];
  readonly state: S;
}

export type SearchResult<S> =
  /** `order`: the local indexes of the ops placed, in linearization order. */
  | { readonly kind: 'linearizable'; readonly order: readonly number[] }
  | { readonly kind: 'violation'; readonly deepest: DeepestPoint<S> }
  /** The budget (or this search's own `maxSteps`) ran out; `deepest` is the best point seen so far. */
  | { readonly kind: 'unknown'; readonly deepest: DeepestPoint<S> | null };

/** Steps between two budget checks: reading the clock every step would dominate. */
const CHARGE_EVERY = 4096;
const MAIN = 0;
const UNKNOWN = 1;

export function searchLinearization<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly HistoryOp<I, O>[],
  budget: Budget,
  maxSteps = Infinity,
): SearchResult<S> {
  const n = ops.length;
  const isKnown = new Uint8Array(n);
  let knownLeft = 0;
  for (let i = 0; i < n; i++) {
    if (!isUnknownOutcome(ops[i] as HistoryOp<I, O>)) {
      isKnown[i] = 1;
      knownLeft++;
    }
  }
  if (knownLeft === 0) return { kind: 'linearizable', order: [] };
  const ownLimit = budget.steps + maxSteps;
  const totalKnown = knownLeft;

  // Entry 0 heads the circular main list (known calls and returns), entry 1 the unknown calls.
  const size = 2 + 2 * knownLeft + (n - knownLeft);
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const opOf = new Int32Array(size);
  const returnOf = new Int32Array(size).fill(-1);
  const time = new Float64Array(size);
  const isReturn = new Uint8Array(size);
  buildLists(ops, isKnown, { next, prev, opOf, returnOf, time, isReturn });

  // Class of each unknown op and its rank among the class's members in call order.
  const classOf = new Int32Array(n).fill(-1);
  const rankOf = new Int32Array(n);
  const classSizes: number[] = [];
  const classIds = new Map<string, number>();
  for (let e = next[UNKNOWN] as number; e !== UNKNOWN; e = next[e] as number) {
    const op = opOf[e] as number;
    const key = model.inputKey === undefined ? `#${op}` : model.inputKey((ops[op] as HistoryOp<I, O>).input);
    let c = classIds.get(key);
    if (c === undefined) {
      c = classSizes.push(0) - 1;
      classIds.set(key, c);
    }
    classOf[op] = c;
    rankOf[op] = classSizes[c] as number;
    classSizes[c] = (classSizes[c] as number) + 1;
  }
  const placedInClass = new Int32Array(classSizes.length);

  const lift = (e: number): void => {
    next[prev[e] as number] = next[e] as number;
    prev[next[e] as number] = prev[e] as number;
    const r = returnOf[e] as number;
    if (r >= 0) {
      next[prev[r] as number] = next[r] as number;
      prev[next[r] as number] = prev[r] as number;
    }
  };
  // Exact inverse of lift, in reverse order: the removed entries still hold their old links.
  const unlift = (e: number): void => {
    const r = returnOf[e] as number;
    if (r >= 0) {
      next[prev[r] as number] = r;
      prev[next[r] as number] = r;
    }
    next[prev[e] as number] = e;
    prev[next[e] as number] = e;
  };

  const linearized = new LinearizedSet(isKnown);
  const cache = new ConfigurationCache<S>(model);
  const stackEntry = new Int32Array(n);
  const stackState: S[] = new Array<S>(n);
  const stackLimit = new Float64Array(n);
  const stackBlocking = new Int32Array(n);
  let depth = 0;
  let state = model.init();
  let inMain = true;
  let cur = next[MAIN] as number;
  let limit = 0; // time of the first return still in the main list
  let blocking = -1; // its entry
  let unchargedSteps = 0;
  let deepest: DeepestPoint<S> | null = null;
  let deepestKnown = -1;

  for (;;) {
    if (++unchargedSteps >= CHARGE_EVERY) {
      if (!budget.charge(unchargedSteps) || budget.steps >= ownLimit) return { kind: 'unknown', deepest };
      unchargedSteps = 0;
    }
    let candidate: number;
    if (inMain) {
      if (isReturn[cur] === 0) {
        candidate = cur;
      } else {
        // Known candidates exhausted; now the unknown ops called no later than this return.
        blocking = cur;
        limit = time[cur] as number;
        inMain = false;
        cur = next[UNKNOWN] as number;
        continue;
      }
    } else if (cur !== UNKNOWN && (time[cur] as number) <= limit) {
      const op = opOf[cur] as number;
      if (rankOf[op] !== placedInClass[classOf[op] as number]) {
        cur = next[cur] as number; // an earlier interchangeable op stands for this one
        continue;
      }
      candidate = cur;
    } else {
      // Nothing can go next: the op of `blocking` must precede its return and cannot. Backtrack.
      // Deepest by known ops placed; among equals the one with fewest unknown ops, since an
      // unknown op placed in the prefix without need only muddies the picture.
      const knownPlaced = totalKnown - knownLeft;
      if (deepest === null || knownPlaced > deepestKnown || (knownPlaced === deepestKnown && depth < deepest.prefix.length)) {
        deepest = snapshot(depth, state);
        deepestKnown = knownPlaced;
      }
      if (depth === 0) {
        budget.charge(unchargedSteps);
        return { kind: 'violation', deepest };
      }
      depth--;
      const e = stackEntry[depth] as number;
      const op = opOf[e] as number;
      state = stackState[depth] as S;
      stackState[depth] = undefined as S; // let the GC have states no frame needs
      linearized.flip(op);
      unlift(e);
      if (isKnown[op] === 1) {
        knownLeft++;
        inMain = true;
      } else {
        placedInClass[classOf[op] as number]--;
        inMain = false;
        limit = stackLimit[depth] as number;
        blocking = stackBlocking[depth] as number;
      }
      cur = next[e] as number;
      continue;
    }

    const op = opOf[candidate] as number;
    const record = ops[op] as HistoryOp<I, O>;
    const result = model.step(state, record.input, isKnown[op] === 1 ? record.output : null);
    if (result.ok) {
      linearized.flip(op);
      if (cache.add(linearized, result.state)) {
        stackEntry[depth] = candidate;
        stackState[depth] = state;
        stackLimit[depth] = limit;
        stackBlocking[depth] = blocking;
        depth++;
        state = result.state;
        lift(candidate);
        if (isKnown[op] === 0) placedInClass[classOf[op] as number]++;
        if (isKnown[op] === 1 && --knownLeft === 0) {
          budget.charge(unchargedSteps);
          return { kind: 'linearizable', order: placed(depth) };
        }
        inMain = true;
        cur = next[MAIN] as number;
        continue;
      }
      linearized.flip(op);
    }
    cur = next[candidate] as number;
  }

  function placed(atDepth: number): number[] {
    const prefix: number[] = [];
    for (let d = 0; d < atDepth; d++) prefix.push(opOf[stackEntry[d] as number] as number);
    return prefix;
  }

  function snapshot(atDepth: number, atState: S): DeepestPoint<S> {
    const prefix = placed(atDepth);
    const pending: number[] = [];
    for (let e = next[MAIN] as number; e !== blocking; e = next[e] as number) {
      if (isReturn[e] === 0) pending.push(opOf[e] as number);
    }
    for (let e = next[UNKNOWN] as number; e !== UNKNOWN && (time[e] as number) <= limit; e = next[e] as number) {
      pending.push(opOf[e] as number);
    }
    return { prefix, stuck: opOf[blocking] as number, pending, state: atState };
  }
}

interface Lists {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly opOf: Int32Array;
  readonly returnOf: Int32Array;
  readonly time: Float64Array;
  readonly isReturn: Uint8Array;
}

/**
 * Lays out both lists. At equal times calls sort before returns: ops that touch at an instant
 * count as concurrent, the reading that never reports a false violation.
 */
function buildLists<I, O>(ops: readonly HistoryOp<I, O>[], isKnown: Uint8Array, l: Lists): void {
  const events: { t: number; isReturn: 0 | 1; op: number }[] = [];
  const unknownCalls: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as HistoryOp<I, O>;
    if (isKnown[i] === 1) {
      events.push({ t: op.call, isReturn: 0, op: i }, { t: op.ret as number, isReturn: 1, op: i });
    } else {
      unknownCalls.push(i);
    }
  }
  events.sort((a, b) => a.t - b.t || a.isReturn - b.isReturn || a.op - b.op);
  unknownCalls.sort((a, b) => (ops[a] as HistoryOp<I, O>).call - (ops[b] as HistoryOp<I, O>).call || a - b);

  let free = 2;
  const append = (head: number, last: number, op: number, t: number, isReturn: 0 | 1): number => {
    const e = free++;
    l.opOf[e] = op;
    l.time[e] = t;
    l.isReturn[e] = isReturn;
    l.next[last] = e;
    l.prev[e] = last;
    l.next[e] = head;
    l.prev[head] = e;
    return e;
  };
  l.next[MAIN] = MAIN;
  l.prev[MAIN] = MAIN;
  l.next[UNKNOWN] = UNKNOWN;
  l.prev[UNKNOWN] = UNKNOWN;
  const callEntry = new Int32Array(ops.length);
  let last = MAIN;
  for (const ev of events) {
    last = append(MAIN, last, ev.op, ev.t, ev.isReturn);
    if (ev.isReturn === 0) callEntry[ev.op] = last;
    else l.returnOf[callEntry[ev.op] as number] = last;
  }
  last = UNKNOWN;
  for (const op of unknownCalls) last = append(UNKNOWN, last, op, (ops[op] as HistoryOp<I, O>).call, 0);
}
