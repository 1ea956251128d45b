// The vocabulary of the linearizability checker: recorded histories, the sequential models they
// are checked against, options and results (Herlihy & Wing 1990 for the definition; Wing & Gong
// 1993 and Lowe 2017 for the search that uses these types). Times are plain numbers in any unit
// the recorder likes (ms, µs, ticks); only their order matters.

/** A client's identity in a history. Only used for display: lanes in the timeline, text column. */
export type ProcessId = number | string;

/**
 * One operation a client performed, as it saw it.
 *
 * - `call`: when the request was sent. Finite.
 * - `ret`: when the response arrived; `null` (or `Infinity`) when it never did.
 * - `output`: what the response said; `null` when the outcome is unknown.
 * - `unknown`: set when a response arrived but does not tell whether the operation took effect
 *   (a 504, a dropped connection after sending). `ret` may then hold the time the client gave up.
 *
 * An op whose outcome is unknown (any of `unknown: true`, `ret` null/Infinity, `output` null) may
 * take effect at any moment after `call`, including after the client gave up, or never at all;
 * its `output` is ignored. This is the only sound reading of a timeout: the request may still be
 * in a leader's log and commit later.
 */
export interface HistoryOp<I, O> {
  readonly process: ProcessId;
  readonly call: number;
  readonly ret: number | null;
  readonly input: I;
  readonly output: O | null;
  readonly unknown?: boolean;
}

export type History<I, O> = readonly HistoryOp<I, O>[];

/** What one sequential step says: whether `output` is a legal answer here, and the next state. */
export interface StepResult<S> {
  readonly ok: boolean;
  readonly state: S;
}

/** A short human rendering of one op for the text and timeline views, e.g. `cas 1→2` / `ok`. */
export interface OpDescription {
  readonly op: string;
  readonly result: string;
}

/**
 * A sequential specification. The checker treats states as immutable values: `step` MUST NOT
 * mutate its argument, because the search keeps earlier states to backtrack to.
 */
export interface Model<S, I, O> {
  readonly name: string;
  init(): S;
  /**
   * Applies `input` to `state`. `output === null` means the outcome is unknown: apply the op's
   * effect (if any) and accept, without checking a result.
   */
  step(state: S, input: I, output: O | null): StepResult<S>;
  /** Equality of states; with `hash` it lets the search recognise configurations seen before. */
  equal(a: S, b: S): boolean;
  /** A 32-bit hash consistent with `equal`. */
  hash(state: S): number;
  /**
   * P-compositionality (Horn & Kroening 2015): when present, the history is split by this key
   * and each part is checked alone against a fresh `init()` state. Only sound when ops on
   * different keys never constrain each other (true for registers and per-key maps).
   */
  keyOf?(input: I): string;
  /**
   * True for ops that never change the state (reads). A read whose outcome is unknown tells
   * nothing and is dropped before the search.
   */
  isReadOnly?(input: I): boolean;
  /**
   * A string equal for two inputs exactly when they have the same effect on every state. Lets
   * the search treat unknown-outcome ops with equal keys as interchangeable. Optional: without
   * it every unknown op is distinct (correct, only slower).
   */
  inputKey?(input: I): string;
  /**
   * Rewrites one key's ops (same length, same order) into ops that the search can decide faster
   * and that get exactly the same verdict, e.g. by giving every value no read ever observed one
   * common name. Results are reported against the original ops.
   */
  simplify?(ops: readonly HistoryOp<I, O>[]): readonly HistoryOp<I, O>[];
  describe(input: I, output: O | null): OpDescription;
  describeState?(state: S): string;
}

/** Options of `checkHistory`. Both budgets are shared by all keys of one call. */
export interface CheckOptions {
  /**
   * The most search steps (one candidate tried or one backtrack) before giving up with
   * `outcome: 'unknown'`.
   * @default 20_000_000
   */
  readonly maxSteps?: number;
  /**
   * Wall-clock budget in milliseconds, checked every few thousand steps.
   * @default 30_000
   */
  readonly timeLimitMs?: number;
  /** The clock the time budget reads; injectable for tests. @default performance.now */
  readonly now?: () => number;
  /**
   * Prefix ops shown before the stuck point in a violation's window, for context.
   * @default 4
   */
  readonly contextOps?: number;
}

export const DEFAULT_CHECK_OPTIONS: Required<Omit<CheckOptions, 'now'>> = {
  maxSteps: 20_000_000,
  timeLimitMs: 30_000,
  contextOps: 4,
};

export const CHECK_OUTCOMES = ['linearizable', 'violation', 'unknown'] as const;
export type CheckOutcome = (typeof CHECK_OUTCOMES)[number];

/** How an op of a violation's window relates to the deepest point the search reached. */
export const WINDOW_ROLES = ['linearized', 'stuck', 'pending'] as const;
export type WindowRole = (typeof WINDOW_ROLES)[number];

/**
 * One op of the window shown for a violation.
 * - `linearized`: part of the longest linearizable prefix found (`order` is its 1-based place).
 * - `stuck`: the op whose return the search could not get past: in every order tried, it could
 *   not be placed before its return with the result it reported.
 * - `pending`: called before the stuck op returned but not in the prefix; none of them could be
 *   placed next either.
 */
export interface WindowOp<I, O> {
  /** Index of the op in the history passed to `checkHistory`. */
  readonly index: number;
  readonly op: HistoryOp<I, O>;
  readonly role: WindowRole;
  readonly order: number | null;
  readonly isUnknownOutcome: boolean;
  readonly description: OpDescription;
}

/** The smallest failing key's history, cut to the ops around where the search got stuck. */
export interface Violation<I, O> {
  readonly key: string;
  readonly model: string;
  /** Ops of this key that took part in the search (unknown reads are dropped). */
  readonly keyOpCount: number;
  /** History indexes of the longest linearizable prefix found, in linearization order. */
  readonly prefix: readonly number[];
  /** History index of the stuck op. */
  readonly stuck: number;
  /** The model's state after the prefix, as `describeState` renders it. */
  readonly stateAfterPrefix: string;
  /** Sorted by call time. */
  readonly window: readonly WindowOp<I, O>[];
}

export interface CheckStats {
  readonly keys: number;
  readonly ops: number;
  readonly steps: number;
  readonly elapsedMs: number;
}

export interface LinearizableResult {
  readonly ok: true;
  readonly outcome: 'linearizable';
  readonly stats: CheckStats;
}

export interface ViolationResult<I, O> {
  readonly ok: false;
  readonly outcome: 'violation';
  /** The failing key with the fewest ops; `violation` describes it. */
  readonly key: string;
  /** Every key found not linearizable (keys left unchecked by the budget are not listed). */
  readonly failingKeys: readonly string[];
  readonly violation: Violation<I, O>;
  readonly stats: CheckStats;
}

/** The budget ran out before an answer: NEVER read this as linearizable. */
export interface UnknownResult {
  readonly ok: false;
  readonly outcome: 'unknown';
  readonly reason: 'max-steps' | 'time-limit';
  readonly uncheckedKeys: readonly string[];
  readonly stats: CheckStats;
}

export type CheckResult<I, O> = LinearizableResult | ViolationResult<I, O> | UnknownResult;
