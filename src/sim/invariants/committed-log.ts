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
  /**
   * seenInTerm[i]: the lowest term any node was in when first seen to hold index i committed.
   * The entry was committed in that term or an earlier one (the node learned it from a leader of
   * no later term, or counted it itself). Non-decreasing in i: a node is seen committing a
   * prefix, and its term only grows.
   */
  private readonly seenInTerm: number[] = [0];

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

  /**
   * The highest index known committed in a term before `term`: what a leader of `term` must hold
   * (Leader Completeness speaks of leaders of higher terms only). A candidate that collected its
   * votes before a pause may lead its term after a later term has committed more, and that is
   * no violation: it can commit nothing, the voters having moved on.
   */
  committedBefore(term: number): number {
    let lo = 0;
    let hi = this.highest;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.seenInTerm[mid]! < term) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  observe(slot: number, node: NodeView): void {
    const from = this.seenCommit[slot]!;
    const to = node.commitIndex;
    if (to <= from) return;
    this.seenCommit[slot] = to;
    while (this.seenInTerm.length <= to) this.seenInTerm.push(Number.POSITIVE_INFINITY);
    for (let i = from + 1; i <= to; i++) {
      if (node.currentTerm < this.seenInTerm[i]!) this.seenInTerm[i] = node.currentTerm;
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
