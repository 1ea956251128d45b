// commitIndex never goes back (Figure 2: commitIndex "increases monotonically"). In memory it is
// checked per incarnation of a node (a restart may recompute it from what was persisted); the
// persisted commitIndex never decreases at all, across crashes and restarts.
import type { HardState } from '../../raft/index.js';
import type { NodeView } from './violation.js';
import { violation } from './violation.js';

export class CommitIndexMonotonic {
  private readonly inMemory: number[];
  private readonly persisted: number[];

  constructor(nodes: number) {
    this.inMemory = new Array<number>(nodes).fill(0);
    this.persisted = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: NodeView): void {
    const was = this.inMemory[slot]!;
    if (node.commitIndex < was) violation('Commit Index Monotonic', `${node.id}'s commitIndex went back from ${was} to ${node.commitIndex}`);
    this.inMemory[slot] = node.commitIndex;
  }

  /** A hard state became durable on node `slot`. */
  durable(slot: number, nodeId: string, hs: HardState): void {
    const was = this.persisted[slot]!;
    if (hs.commitIndex < was) violation('Commit Index Monotonic', `${nodeId}'s persisted commitIndex went back from ${was} to ${hs.commitIndex}`);
    this.persisted[slot] = hs.commitIndex;
  }

  /** Node `slot` restarted from `hs` and its core starts at `commitIndex`. */
  restart(slot: number, nodeId: string, hs: HardState, commitIndex: number): void {
    this.durable(slot, nodeId, hs);
    this.inMemory[slot] = commitIndex;
    if (commitIndex < hs.commitIndex) violation('Commit Index Monotonic', `${nodeId} restarted with commitIndex ${commitIndex} below its persisted ${hs.commitIndex}`);
  }

  /** The slot hosts a new server with an empty disk. */
  reset(slot: number): void {
    this.inMemory[slot] = 0;
    this.persisted[slot] = 0;
  }
}
