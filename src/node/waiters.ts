// The callers RaftNode keeps waiting: proposals until their entry is applied (or turns out to be
// another leader's), ReadIndex reads until their round is confirmed (thesis §6.4) and then until
// the state machine has applied their index.
import { ProposalDroppedError, type Entry, type ReadState } from '../raft/index.js';
import type { Applied } from './options.js';

interface ProposalWaiter<R> {
  readonly term: number;
  readonly resolve: (applied: Applied<R>) => void;
  readonly reject: (err: Error) => void;
}

interface ReadWaiter {
  index: number;
  readonly resolve: (index: number) => void;
  readonly reject: (err: Error) => void;
}

export class Waiters<R> {
  private readonly proposals = new Map<number, ProposalWaiter<R>>();
  /** Reads whose leadership round is not confirmed yet, by request id. */
  private readonly readsById = new Map<number, ReadWaiter>();
  /** Reads with a read index, waiting for the state machine to apply it. */
  private readsWaitingApply: ReadWaiter[] = [];
  private nextReadId = 1;

  /** Settles when the entry at `index` proposed in `term` is applied (see applied()). */
  proposal(index: number, term: number): Promise<Applied<R>> {
    return new Promise<Applied<R>>((resolve, reject) => this.proposals.set(index, { term, resolve, reject }));
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
      w.reject(new ProposalDroppedError(`outcome of entry ${i} is unknown: state replaced by a snapshot`));
    }
  }

  /** A new read: its id for the core's readIndex(), and the promise of its read index. */
  read(): { id: number; settled: Promise<number> } {
    const id = this.nextReadId++;
    const settled = new Promise<number>((resolve, reject) => this.readsById.set(id, { index: 0, resolve, reject }));
    return { id, settled };
  }

  /** The core refused read `id` at once: forget it (the caller throws the core's error). */
  dropRead(id: number): void {
    this.readsById.delete(id);
  }

  /** Resolves once the state machine has applied `index` (see release()). */
  waitApplied(index: number): Promise<number> {
    return new Promise<number>((resolve, reject) => this.readsWaitingApply.push({ index, resolve, reject }));
  }

  /** Rounds the core confirmed: those reads now wait for their index to be applied. */
  confirmed(readStates: readonly ReadState[]): void {
    for (const rs of readStates) {
      const w = this.readsById.get(rs.requestId);
      if (w === undefined) continue;
      this.readsById.delete(rs.requestId);
      w.index = rs.index;
      this.readsWaitingApply.push(w);
    }
  }

  /** The state machine has applied up to `applied`: settle the reads waiting for it. */
  release(applied: number): void {
    if (this.readsWaitingApply.length === 0) return;
    const still: ReadWaiter[] = [];
    for (const w of this.readsWaitingApply) {
      if (w.index <= applied) w.resolve(w.index);
      else still.push(w);
    }
    this.readsWaitingApply = still;
  }

  /** Leadership was lost: reads not yet confirmed fail (they may be retried elsewhere). */
  failUnconfirmedReads(err: Error): void {
    for (const w of this.readsById.values()) w.reject(err);
    this.readsById.clear();
  }

  /** The node stops: everyone still waiting fails with `err`. */
  failAll(err: Error): void {
    for (const w of this.proposals.values()) w.reject(err);
    this.proposals.clear();
    this.failUnconfirmedReads(err);
    for (const w of this.readsWaitingApply) w.reject(err);
    this.readsWaitingApply = [];
  }
}
