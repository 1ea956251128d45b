// The simulator's invariant checkers, one file per property (Raft paper Figure 3 and Figure 2).
export { InvariantSuite } from './suite.js';
export { ElectionSafety } from './election-safety.js';
export { LeaderAppendOnly } from './leader-append-only.js';
export { LogMatching } from './log-matching.js';
export { CommittedLog } from './committed-log.js';
export { LeaderCompleteness } from './leader-completeness.js';
export { StateMachineSafety } from './state-machine-safety.js';
export { CommitIndexMonotonic } from './commit-index-monotonic.js';
export { TermMonotonic } from './term-monotonic.js';
export { SingleVote } from './single-vote.js';
export { Durability } from './durability.js';
export { Liveness } from './liveness.js';
export { LinearizableReads } from './linearizable-reads.js';
export { INVARIANTS, InvariantViolation, sameEntry, violation } from './violation.js';
export type { InvariantName, LogView, NodeView } from './violation.js';
