// The client's part in the liveness check after healing: keep exactly one fresh proposal in play
// until a leader commits it (its acknowledgement) and every node has applied it. If the leader
// that took the probe crashes or loses its term first, the probe is proposed again elsewhere.
// "Every node" means every member of the configuration in force at the leader: a removed server
// that still runs hears from no leader and is not expected to apply anything new.
import type { NodeId } from '../raft/index.js';
import type { Liveness } from './invariants/liveness.js';
import type { SimNode } from './sim-node.js';
import type { Workload } from './workload.js';

export class LivenessProbe {
  private probe: { slot: number; incarnation: number; term: number; index: number } | null = null;

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly workload: Workload,
    private readonly liveness: Liveness,
    private readonly trace: (line: string) => void,
    /** The ids that must apply the probe, or null while that is not known (no leader). */
    private readonly mustConverge: () => ReadonlySet<NodeId> | null,
  ) {}

  /** `node` acknowledged (applied as accepted) the entry at `index`. */
  acknowledged(now: number, node: SimNode, index: number): void {
    const p = this.probe;
    if (p !== null && p.slot === node.slot && p.index === index) {
      this.liveness.committed(now, index);
      this.trace(`${node.id} committed the liveness probe at ${index}`);
    }
  }

  /** One round; returns the node it proposed at (to be pumped), `true` once recovered, else null. */
  step(now: number): SimNode | true | null {
    const liveness = this.liveness;
    if (liveness.committedIndex > 0) {
      const index = liveness.committedIndex;
      const ids = this.mustConverge();
      if (ids === null || !this.nodes.every((n) => !ids.has(n.id) || (n.isProvisioned && n.sm !== null && n.sm.index >= index))) return null;
      liveness.converged(now);
      this.trace(`every node applied ${index}: recovered ${liveness.recoveryMs.toFixed(0)} ms after healing`);
      return true;
    }
    const p = this.probe;
    if (p !== null) {
      const node = this.nodes[p.slot]!;
      const c = node.core;
      if (node.incarnation === p.incarnation && c !== null && c.role === 'leader' && c.currentTerm === p.term) return null;
      this.probe = null; // its leader crashed or lost its term: propose again
    }
    const r = this.workload.proposeOne();
    if (r === null) return null;
    this.probe = { slot: r.node.slot, incarnation: r.node.incarnation, term: r.node.core!.currentTerm, index: r.index };
    this.trace(`liveness probe proposed at ${r.node.id}, index ${r.index}`);
    return r.node;
  }
}
