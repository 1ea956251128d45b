// An entry reaches the state machine only once it is committed (Figure 2, rules for all servers:
// "If commitIndex > lastApplied: increment lastApplied, apply log[lastApplied]"). The runtime
// applies committed entries while a sync is in flight, straight from the core's log (early
// apply, node/runtime.ts): this is what keeps that honest at the moment it happens, long before
// State Machine Safety could see two replicas disagree.
import type { Entry, NodeId } from '../../raft/index.js';
import { describeEntry, violation } from './violation.js';

export class ApplyOnlyCommitted {
  /** `nodeId`, whose commitIndex is `commitIndex`, applies `entry`. */
  apply(nodeId: NodeId, entry: Entry, commitIndex: number): void {
    if (entry.index > commitIndex) {
      violation('Apply Only Committed', `${nodeId} applies ${describeEntry(entry)} with commitIndex ${commitIndex}`);
    }
  }
}
