// Linearizable reads without writing to the log (thesis §6.4): the leader records its
// commitIndex as the read index, confirms it is still the leader by hearing from a majority in a
// heartbeat round started after the request, and only then lets the read proceed.
import type { Entry, ReadState } from './types.js';

export const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];

interface PendingRead {
  readonly requestId: number;
  readonly index: number;
  /** The heartbeat round whose majority acknowledgement confirms leadership. */
  readonly seq: number;
}

export class ReadIndexQueue {
  private pending: PendingRead[] = [];
  /** Requests that arrived before the leader committed an entry of its own term (§8). */
  private deferred: number[] = [];

  add(requestId: number, index: number, seq: number): void {
    this.pending.push({ requestId, index, seq });
  }

  deferUntilCommit(requestId: number): void {
    this.deferred.push(requestId);
  }

  hasDeferred(): boolean {
    return this.deferred.length > 0;
  }

  promoteDeferred(index: number, seq: number): void {
    for (const requestId of this.deferred) this.pending.push({ requestId, index, seq });
    this.deferred = [];
  }

  /** Moves every read whose round a quorum has acknowledged into `out`, oldest first. */
  release(isConfirmed: (seq: number) => boolean, out: ReadState[]): void {
    let n = 0;
    // Rounds only grow along the queue, so the first unconfirmed read blocks the rest.
    while (n < this.pending.length && isConfirmed(this.pending[n]!.seq)) {
      const r = this.pending[n]!;
      out.push({ requestId: r.requestId, index: r.index });
      n++;
    }
    if (n > 0) this.pending.splice(0, n);
  }

  /** Leadership lost: the runtime fails whatever was waiting (it sees the role change). */
  clear(): void {
    this.pending = [];
    this.deferred = [];
  }
}
