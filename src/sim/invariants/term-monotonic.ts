// currentTerm never decreases (Figure 2: "increases monotonically"). In memory per incarnation;
// the persisted currentTerm across all history (a restart resumes at least where it stood).
import type { HardState } from '../../raft/index.js';
import type { NodeView } from './violation.js';
import { violation } from './violation.js';

export class TermMonotonic {
  private readonly inMemory: number[];
  private readonly persisted: number[];

  constructor(nodes: number) {
    this.inMemory = new Array<number>(nodes).fill(0);
    this.persisted = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: NodeView): void {
    const was = this.inMemory[slot]!;
    if (node.currentTerm < was) violation('Term Monotonic', `${node.id}'s currentTerm went back from ${was} to ${node.currentTerm}`);
    this.inMemory[slot] = node.currentTerm;
  }

  durable(slot: number, nodeId: string, hs: HardState): void {
    const was = this.persisted[slot]!;
    if (hs.currentTerm < was) violation('Term Monotonic', `${nodeId}'s persisted currentTerm went back from ${was} to ${hs.currentTerm}`);
    this.persisted[slot] = hs.currentTerm;
  }

  restart(slot: number, nodeId: string, hs: HardState): void {
    this.durable(slot, nodeId, hs);
    this.inMemory[slot] = hs.currentTerm;
  }

  /** The slot hosts a new server with an empty disk. */
  reset(slot: number): void {
    this.inMemory[slot] = 0;
    this.persisted[slot] = 0;
  }
}
