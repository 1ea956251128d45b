// Leader Append-Only (Figure 3, §5.3): a leader never overwrites or deletes entries in its log; it
// only appends new ones. Checked three ways, all per (node, term) of leadership:
//   - every step: the log did not shrink and the entry last seen at its end is still there;
//   - every Ready: a leader never hands storage a batch that starts at or below one it already
//     handed over in this term (that would overwrite its own persisted entries);
//   - periodically (fullCheck): every entry recorded during the term is unchanged (compacted
//     ones excepted: a snapshot covers them).
import type { Entry } from '../../raft/index.js';
import type { NodeView } from './violation.js';
import { describeEntry, sameEntry, violation } from './violation.js';

interface Leadership {
  term: number;
  /** Index of entries[0]. */
  firstIndex: number;
  entries: Entry[];
}

export class LeaderAppendOnly {
  private readonly leading: (Leadership | null)[];
  /** Per node: the term and last index of the latest Ready batch handed over while leading. */
  private readonly handedTerm: number[];
  private readonly handedLast: number[];

  constructor(nodes: number) {
    this.leading = new Array<Leadership | null>(nodes).fill(null);
    this.handedTerm = new Array<number>(nodes).fill(0);
    this.handedLast = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: NodeView): void {
    let lead = this.leading[slot]!;
    if (node.role !== 'leader') {
      if (lead !== null) this.leading[slot] = null;
      return;
    }
    if (lead === null || lead.term !== node.currentTerm) {
      lead = { term: node.currentTerm, firstIndex: node.snapshotIndex + 1, entries: [] };
      for (let i = lead.firstIndex; i <= node.lastIndex; i++) lead.entries.push(node.entryAt(i)!);
      this.leading[slot] = lead;
      return;
    }
    const recordedLast = lead.firstIndex + lead.entries.length - 1;
    if (node.lastIndex < recordedLast) {
      violation('Leader Append-Only', `${node.id}, leader of term ${lead.term}, shrank its log from ${recordedLast} to ${node.lastIndex}`);
    }
    if (recordedLast >= lead.firstIndex) {
      const was = lead.entries[lead.entries.length - 1]!;
      const now = node.entryAt(recordedLast);
      if (now === undefined ? node.termAt(recordedLast) !== was.term : !sameEntry(now, was)) {
        violation('Leader Append-Only', `${node.id}, leader of term ${lead.term}, replaced ${describeEntry(was)} with ${describeEntry(now)}`);
      }
    }
    for (let i = recordedLast + 1; i <= node.lastIndex; i++) lead.entries.push(node.entryAt(i)!);
  }

  /** A Ready's entries are being handed to storage. */
  persist(slot: number, node: NodeView, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    if (node.role !== 'leader') {
      this.handedTerm[slot] = 0;
      return;
    }
    const first = entries[0]!.index;
    if (this.handedTerm[slot] === node.currentTerm && first <= this.handedLast[slot]!) {
      violation('Leader Append-Only', `${node.id}, leader of term ${node.currentTerm}, rewrote persisted entries from ${first} (already handed up to ${this.handedLast[slot]})`);
    }
    this.handedTerm[slot] = node.currentTerm;
    this.handedLast[slot] = entries[entries.length - 1]!.index;
  }

  /** Compares every entry recorded during each current leadership with the log as it is now. */
  fullCheck(slot: number, node: NodeView): void {
    const lead = this.leading[slot]!;
    if (lead === null || node.role !== 'leader' || node.currentTerm !== lead.term) return;
    const from = Math.max(lead.firstIndex, node.snapshotIndex + 1);
    const to = lead.firstIndex + lead.entries.length - 1;
    for (let i = from; i <= to; i++) {
      const was = lead.entries[i - lead.firstIndex]!;
      const now = node.entryAt(i);
      if (now === undefined || !sameEntry(now, was)) {
        violation('Leader Append-Only', `${node.id}, leader of term ${lead.term}, changed entry ${i}: ${describeEntry(was)} became ${describeEntry(now)}`);
      }
    }
  }

  crash(slot: number): void {
    this.leading[slot] = null;
    this.handedTerm[slot] = 0;
  }

  reset(slot: number): void {
    this.crash(slot);
  }
}
