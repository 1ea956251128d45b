// The cluster's committed log as the checkers learn it: whenever a node's commitIndex moves past
// an index, the entry it holds there is recorded as committed. It is the ground truth for Leader
// Completeness and Durability; two nodes committing different entries at one index is reported
// under State Machine Safety (both would go on to apply them).
import type { Entry } from '../../raft/index.js';
import type { NodeView } from './violation.js';
import { describeEntry, sameEntry, violation } from './violation.js';

export class CommittedLog {
  /** terms[i] = term of the committed entry at i, 0 while unknown (only a snapshot covered it). */
  private readonly terms: number[] = [0];
  private readonly entries: (Entry | undefined)[] = [undefined];
  private readonly seenCommit: number[];
  private highest = 0;

  constructor(nodes: number) {
    this.seenCommit = new Array<number>(nodes).fill(0);
  }

  /** The highest index known committed. */
  get commitIndex(): number {
    return this.highest;
  }

  /** The committed term at `index`, or undefined if no node has been seen committing it. */
  termAt(index: number): number | undefined {
    const t = this.terms[index];
    return t === undefined || t === 0 ? undefined : t;
  }

  entryAt(index: number): Entry | undefined {
    return this.entries[index];
  }

  observe(slot: number, node: NodeView): void {
    const from = this.seenCommit[slot]!;
    const to = node.commitIndex;
    if (to <= from) return;
    this.seenCommit[slot] = to;
    for (let i = from + 1; i <= to; i++) {
      const e = node.entryAt(i);
      const term = e?.term ?? (i === node.snapshotIndex ? node.snapshotTerm : undefined);
      if (term === undefined) continue; // compacted, or covered by a snapshot just installed
      this.record(node.id, i, term, e);
    }
  }

  /** A restarted incarnation's commitIndex is read afresh. */
  restart(slot: number, commitIndex: number): void {
    this.seenCommit[slot] = commitIndex;
  }

  /** The slot hosts a new server with an empty log. */
  reset(slot: number): void {
    this.seenCommit[slot] = 0;
  }

  private record(nodeId: string, index: number, term: number, e: Entry | undefined): void {
    while (this.terms.length <= index) {
      this.terms.push(0);
      this.entries.push(undefined);
    }
    const known = this.terms[index]!;
    if (known === 0) {
      this.terms[index] = term;
      this.entries[index] = e;
      if (index > this.highest) this.highest = index;
      return;
    }
    const have = this.entries[index];
    if (known !== term || (e !== undefined && have !== undefined && !sameEntry(have, e))) {
      violation('State Machine Safety', `index ${index} committed as ${describeEntry(have)} (term ${known}) and as ${describeEntry(e)} (term ${term}) on ${nodeId}`);
    }
    if (have === undefined && e !== undefined) this.entries[index] = e;
  }
}
