// One membership change at a time (thesis §4.3, and §4.1 for single-server changes): a leader
// MUST NOT append a configuration entry while an earlier one in its log is uncommitted, so a
// leader's log never holds two configuration entries above the cluster's commit point. (The core
// keeps this with `pendingConfigIndex` and the joint check in `proposeConfigChange`.)
//
// "Uncommitted" is judged by the cluster, not the leader: a new leader may not yet know that the
// C_old,new it inherited was committed by its predecessor, which then appended C_new. The check
// runs when a node is first seen leading a term and whenever a leader's newest configuration
// entry moves, scanning back from it to the cluster's commit point (a short stretch).
import type { CommittedLog } from './committed-log.js';
import type { MemberView } from './violation.js';
import { violation } from './violation.js';

export class ConfigChangeOneAtATime {
  /** Per node: the (term, configIndex) last checked while it was leader. */
  private readonly checkedTerm: number[];
  private readonly checkedIndex: number[];

  constructor(
    nodes: number,
    private readonly committed: CommittedLog,
  ) {
    this.checkedTerm = new Array<number>(nodes).fill(0);
    this.checkedIndex = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: MemberView): void {
    if (node.role !== 'leader') return;
    const configIndex = node.configIndex;
    if (this.checkedTerm[slot] === node.currentTerm && this.checkedIndex[slot] === configIndex) return;
    this.checkedTerm[slot] = node.currentTerm;
    this.checkedIndex[slot] = configIndex;
    this.check(node);
  }

  check(node: MemberView): void {
    const committedTo = Math.max(this.committed.commitIndex, node.commitIndex, node.snapshotIndex);
    const newest = node.configIndex;
    if (newest <= committedTo) return;
    for (let i = newest - 1; i > committedTo; i--) {
      const e = node.entryAt(i);
      if (e !== undefined && e.type === 'config') {
        violation('Config Change One At A Time', `${node.id}, leader of term ${node.currentTerm}, holds configuration entries at ${i} and ${newest}, both above the commit point ${committedTo}`);
      }
    }
  }

  reset(slot: number): void {
    this.checkedTerm[slot] = 0;
    this.checkedIndex[slot] = 0;
  }
}
