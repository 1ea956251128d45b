// Leader Completeness (Figure 3, §5.4): if a log entry is committed in a given term, that entry
// will be present in the logs of the leaders for all higher-numbered terms. Checked the moment a
// node is first seen leading a term: its log must hold every entry known committed in an earlier
// term (CommittedLog.committedBefore: one a node was seen holding committed while in an earlier
// term). Not later ones: a candidate paused with its votes in hand can lead its term after a
// higher term has committed more. Indexes its snapshot covers count as held; the snapshot's own
// (index, term) must then be committed too.
import type { CommittedLog } from './committed-log.js';
import type { NodeView } from './violation.js';
import { describeEntry, sameEntry, violation } from './violation.js';

export class LeaderCompleteness {
  /** Per node: the last term in which it was checked as a new leader. */
  private readonly checkedTerm: number[];

  constructor(
    nodes: number,
    private readonly committed: CommittedLog,
  ) {
    this.checkedTerm = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: NodeView): void {
    if (node.role !== 'leader' || this.checkedTerm[slot] === node.currentTerm) return;
    this.checkedTerm[slot] = node.currentTerm;
    this.check(node);
  }

  reset(slot: number): void {
    this.checkedTerm[slot] = 0;
  }

  check(node: NodeView): void {
    const committedTo = this.committed.committedBefore(node.currentTerm);
    const snapshotIndex = node.snapshotIndex;
    if (snapshotIndex > 0 && snapshotIndex <= committedTo) {
      const t = this.committed.termAt(snapshotIndex);
      if (t !== undefined && t !== node.snapshotTerm) {
        violation('Leader Completeness', `${node.id} leads term ${node.currentTerm} from a snapshot at (${snapshotIndex}, term ${node.snapshotTerm}) but term ${t} was committed there`);
      }
    }
    if (node.lastIndex < committedTo) {
      violation('Leader Completeness', `${node.id} leads term ${node.currentTerm} with a log ending at ${node.lastIndex}, but ${committedTo} was committed before that term`);
    }
    for (let i = snapshotIndex + 1; i <= committedTo; i++) {
      const t = this.committed.termAt(i);
      if (t === undefined) continue;
      const mine = node.entryAt(i);
      const theirs = this.committed.entryAt(i);
      if (mine === undefined || mine.term !== t || (theirs !== undefined && !sameEntry(mine, theirs))) {
        violation('Leader Completeness', `${node.id} leads term ${node.currentTerm} but lacks committed entry ${i} (term ${t}): it holds ${describeEntry(mine)}`);
      }
    }
  }
}
