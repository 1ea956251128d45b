// The callers RaftNode keeps waiting: proposals until their entry is applied (or turns out to be
// another leader's), ReadIndex reads until their round is confirmed (thesis §6.4) and the state
// machine has applied their index (the runtime says when: RuntimeHooks.readReady), and callers
// waiting for an index to be applied.
import { ProposalDroppedError, type Entry, type ReadState } from '../raft/index.js';
import type { Applied } from './options.js';

interface ProposalWaiter<R> {
  readonly term: number;
  readonly resolve: (applied: Applied<R>) => void;
  readonly reject: (err: Error) => void;
}

interface ReadWaiter {
  /** The core confirmed its round: it only waits for the state machine now. */
  isConfirmed: boolean;
  readonly resolve: (index: number) => void;
  readonly reject: (err: Error) => void;
}

export class Waiters<R> {
  private readonly proposals = new Map<number, ProposalWaiter<R>>();
  /** Reads and waits for an applied index, by request id. */
  private readonly reads = new Map<number, ReadWaiter>();
  private nextReadId = 1;

  /** Settles when the entry at `index` proposed in `term` is applied (see applied()). */
  proposal(index: number, term: number): Promise<Applied<R>> {
    return new Promise<Applied<R>>((resolve, reject) => {
      // A newer term's entry at an index someone already waits on (a proposal forwarded by this
      // node to an old leader, then this node's own as leader): the old one may still commit
      // through a third server, so its caller cannot be told either way.
      const earlier = this.proposals.get(index);
      if (earlier !== undefined && earlier.term !== term) {
        earlier.reject(new ProposalDroppedError(`entry ${index} of term ${earlier.term}: another entry of term ${term} took its place in this log`, 'unknown'));
      }
      this.proposals.set(index, { term, resolve, reject });
    });
  }

  /** `e` was applied with `result`: its proposer, if waiting here, learns whether it was its entry. */
  applied(e: Entry, result: R): boolean {
    const w = this.proposals.get(e.index);
    if (w === undefined) return false;
    this.proposals.delete(e.index);
    // Another leader's entry at this index means ours was overwritten and never committed.
    if (e.term === w.term) w.resolve({ index: e.index, result });
    else w.reject(new ProposalDroppedError(`entry ${e.index} was replaced by a newer leader's`));
    return true;
  }

  /** A snapshot replaced the state up to `index`: whether those proposals applied is unknown. */
  rejectProposalsUpTo(index: number): void {
    for (const [i, w] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      w.reject(new ProposalDroppedError(`entry ${i}: the state that would tell whether it applied was replaced by a snapshot`, 'unknown'));
    }
  }

  /** A new read: its id for the core's readIndex(), and the promise of its read index. */
  read(): { id: number; settled: Promise<number> } {
    return this.add(false);
  }

  /** A wait for an applied index: its id for Runtime.awaitApplied(), and the promise. */
  waitApplied(): { id: number; settled: Promise<number> } {
    return this.add(true);
  }

  /** The core refused read `id` at once: forget it (the caller throws the core's error). */
  dropRead(id: number): void {
    this.reads.delete(id);
  }

  /** Rounds the core confirmed: those reads now only wait for their index to be applied. */
  confirmed(readStates: readonly ReadState[]): void {
    for (const rs of readStates) {
      const w = this.reads.get(rs.requestId);
      if (w !== undefined) w.isConfirmed = true;
    }
  }

  /** The state machine has applied read `id`'s `index`. */
  resolveRead(id: number, index: number): void {
    const w = this.reads.get(id);
    if (w === undefined) return;
    this.reads.delete(id);
    w.resolve(index);
  }

  /** Leadership was lost: reads not yet confirmed fail (they may be retried elsewhere). */
  failUnconfirmedReads(err: Error): void {
    for (const [id, w] of this.reads) {
      if (w.isConfirmed) continue;
      this.reads.delete(id);
      w.reject(err);
    }
  }

  /** The node stops: everyone still waiting fails with `err`. */
  failAll(err: Error): void {
    for (const w of this.proposals.values()) w.reject(err);
    this.proposals.clear();
    for (const w of this.reads.values()) w.reject(err);
    this.reads.clear();
  }

  private add(isConfirmed: boolean): { id: number; settled: Promise<number> } {
    const id = this.nextReadId++;
    const settled = new Promise<number>((resolve, reject) => this.reads.set(id, { isConfirmed, resolve, reject }));
    return { id, settled };
  }
}

/**
 * The results of the last `capacity` entries applied, by index: a member that forwarded a proposal
 * learns its index from the leader's answer, which may arrive after the entry was applied here
 * (the answer and the entries travel on different streams). RaftNode records into it only while
 * forwarded proposals are unanswered.
 */
export class RecentlyApplied<R> {
  private readonly indexes: Float64Array;
  private readonly terms: Float64Array;
  private readonly results: (R | undefined)[];

  constructor(private readonly capacity = 4096) {
    this.indexes = new Float64Array(capacity);
    this.terms = new Float64Array(capacity);
    this.results = new Array<R | undefined>(capacity);
  }

  record(e: Entry, result: R): void {
    const slot = e.index % this.capacity;
    this.indexes[slot] = e.index;
    this.terms[slot] = e.term;
    this.results[slot] = result;
  }

  /** The entry applied at `index`, if still held. */
  get(index: number): { term: number; result: R } | undefined {
    const slot = index % this.capacity;
    if (this.indexes[slot] !== index) return undefined;
    return { term: this.terms[slot]!, result: this.results[slot] as R };
  }
}
