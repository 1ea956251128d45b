// Log Matching (Figure 3, §5.3): if two logs contain an entry with the same index and term, then
// the logs are identical in all entries up through that index.
// Incremental check: every entry any node hands to storage is recorded under (index, term) with
// the term of the entry before it in that node's log and its bytes. Another entry with the same
// (index, term) but a different predecessor term or payload is a violation; by induction on the
// index, agreement at every (index, term) means whole prefixes agree. An occasional full pairwise
// comparison of the live logs backs this up.
import type { Entry } from '../../raft/index.js';
import type { LogView } from './violation.js';
import { describeEntry, sameEntry, violation } from './violation.js';

interface Record {
  readonly term: number;
  readonly prevTerm: number;
  readonly entry: Entry;
  readonly by: string;
  next: Record | null;
}

export class LogMatching {
  /** records[index] = a short list, one record per distinct term seen at that index. */
  private readonly records: (Record | null | undefined)[] = [];

  /**
   * `entries` (contiguous) are entering `nodeId`'s log; `prevTerm` is the term of the entry just
   * before entries[0] in that log (0 for index 1).
   */
  observe(nodeId: string, entries: readonly Entry[], prevTerm: number): void {
    let before = prevTerm;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      this.record(nodeId, e, before);
      before = e.term;
    }
  }

  private record(nodeId: string, e: Entry, prevTerm: number): void {
    const head = this.records[e.index] ?? null;
    let r = head;
    while (r !== null) {
      if (r.term === e.term) {
        if (r.prevTerm !== prevTerm) {
          violation('Log Matching', `entry (${e.index}, term ${e.term}) follows term ${r.prevTerm} on ${r.by} but term ${prevTerm} on ${nodeId}`);
        }
        if (!sameEntry(r.entry, e)) {
          violation('Log Matching', `entry (${e.index}, term ${e.term}) differs: ${describeEntry(r.entry)} on ${r.by}, ${describeEntry(e)} on ${nodeId}`);
        }
        return;
      }
      r = r.next;
    }
    this.records[e.index] = { term: e.term, prevTerm, entry: e, by: nodeId, next: head };
  }

  /**
   * Full check of two logs: find the highest index both hold with the same term; every entry
   * both hold at or below it must be identical.
   */
  static compare(aId: string, a: LogView, bId: string, b: LogView): void {
    const lo = Math.max(a.snapshotIndex, b.snapshotIndex) + 1;
    let hi = Math.min(a.lastIndex, b.lastIndex);
    while (hi >= lo && a.termAt(hi) !== b.termAt(hi)) hi--;
    for (let i = lo; i <= hi; i++) {
      const x = a.entryAt(i);
      const y = b.entryAt(i);
      if (x === undefined || y === undefined || !sameEntry(x, y)) {
        violation('Log Matching', `${aId} and ${bId} agree on (${hi}, term ${a.termAt(hi)}) but differ at ${i}: ${describeEntry(x)} vs ${describeEntry(y)}`);
      }
    }
  }
}
