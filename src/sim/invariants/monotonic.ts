// A per-node counter that never goes back (Figure 2: currentTerm and commitIndex both "increase
// monotonically"). In memory it is checked per incarnation of a node; the persisted value never
// decreases at all, across crashes and restarts, and a restarted node starts at least at it.
import type { HardState } from '../../raft/index.js';
import type { InvariantName, NodeView } from './violation.js';
import { violation } from './violation.js';

export class Monotonic {
  private readonly inMemory: number[];
  private readonly persisted: number[];

  constructor(
    nodes: number,
    private readonly invariant: InvariantName,
    private readonly field: string,
    private readonly live: (node: NodeView) => number,
    private readonly durableValue: (hs: HardState) => number,
  ) {
    this.inMemory = new Array<number>(nodes).fill(0);
    this.persisted = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: NodeView): void {
    const was = this.inMemory[slot]!;
    const now = this.live(node);
    if (now < was) violation(this.invariant, `${node.id}'s ${this.field} went back from ${was} to ${now}`);
    this.inMemory[slot] = now;
  }

  /** A hard state became durable on node `slot`. */
  durable(slot: number, nodeId: string, hs: HardState): void {
    const was = this.persisted[slot]!;
    const now = this.durableValue(hs);
    if (now < was) violation(this.invariant, `${nodeId}'s persisted ${this.field} went back from ${was} to ${now}`);
    this.persisted[slot] = now;
  }

  /** Node `slot` restarted from `hs` and its core starts at `startsAt`. */
  restart(slot: number, nodeId: string, hs: HardState, startsAt: number): void {
    this.durable(slot, nodeId, hs);
    this.inMemory[slot] = startsAt;
    const floor = this.durableValue(hs);
    if (startsAt < floor) violation(this.invariant, `${nodeId} restarted with ${this.field} ${startsAt} below its persisted ${floor}`);
  }

  /** The slot hosts a new server with an empty disk. */
  reset(slot: number): void {
    this.inMemory[slot] = 0;
    this.persisted[slot] = 0;
  }
}

export const termMonotonic = (nodes: number): Monotonic =>
  new Monotonic(nodes, 'Term Monotonic', 'currentTerm', (n) => n.currentTerm, (hs) => hs.currentTerm);

export const commitIndexMonotonic = (nodes: number): Monotonic =>
  new Monotonic(nodes, 'Commit Index Monotonic', 'commitIndex', (n) => n.commitIndex, (hs) => hs.commitIndex);
