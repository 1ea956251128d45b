// The replicated state machine's side of the contract (§5.3: "apply log[lastApplied] to state
// machine"). Implementations MUST be deterministic: the same entries in the same order give the
// same state and results on every node, so nothing here may read clocks or randomness; time that
// matters to the state (expiry) travels inside the entries.
import type { Entry } from './types.js';

export interface StateMachine<Result = unknown> {
  /** Applies one committed entry. Called exactly once per index, in index order. */
  apply(entry: Entry): Result;
  /** Serializes the whole state as of the last applied entry. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot's bytes. */
  restore(data: Uint8Array): void;
}
