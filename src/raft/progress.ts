// The leader's view of each follower (Figure 2's nextIndex[] and matchIndex[]) plus flow
// control. A follower is in one of three states:
//   probe:     we do not know where its log matches ours; one AppendEntries at a time until a
//              success shows the match point (§5.3, backtracking with the conflict hint).
//   replicate: the match point is known; AppendEntries are pipelined, nextIndex advanced
//              optimistically, with at most `maxInflight` messages (and bytes) unacknowledged;
//              every send fills that window (replication.ts sendAppend), so a follower far
//              behind is caught up a window per round trip.
//   snapshot:  it needs entries we compacted; an InstallSnapshot (§7) is on its way.
import type { NodeId } from './types.js';

export const PROGRESS_STATES = ['probe', 'replicate', 'snapshot'] as const;
export type ProgressState = (typeof PROGRESS_STATES)[number];

/** A ring of the last index of each unacknowledged AppendEntries, oldest first. */
export class Inflights {
  private readonly lastIndexes: number[];
  private readonly bytes: number[];
  private start = 0;
  private size = 0;
  private totalBytes = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes: number,
  ) {
    this.lastIndexes = new Array<number>(capacity).fill(0);
    this.bytes = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this.size;
  }

  isFull(): boolean {
    return this.size >= this.capacity || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes);
  }

  add(lastIndex: number, bytes: number): void {
    const slot = (this.start + this.size) % this.capacity;
    this.lastIndexes[slot] = lastIndex;
    this.bytes[slot] = bytes;
    this.size++;
    this.totalBytes += bytes;
  }

  /** Frees every message whose entries are all acknowledged (last index ≤ `index`). */
  freeUpTo(index: number): void {
    while (this.size > 0 && this.lastIndexes[this.start]! <= index) {
      this.totalBytes -= this.bytes[this.start]!;
      this.start = (this.start + 1) % this.capacity;
      this.size--;
    }
  }

  reset(): void {
    this.start = 0;
    this.size = 0;
    this.totalBytes = 0;
  }
}

export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = 'probe';
  /** In probe state: an AppendEntries is out and unanswered; send nothing more until it is. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Ticks spent in snapshot state, so a lost InstallSnapshot is retried. */
  snapshotTicks = 0;
  /** Heard from since the last CheckQuorum round (thesis §6.2). */
  recentActive = false;
  /** Highest leader round (AppendEntries.seq) this follower has answered (thesis §6.4). */
  ackedSeq = 0;
  /** matchIndex at the previous heartbeat, and how many rounds it has not moved. */
  matchAtLastHeartbeat = 0;
  stalledHeartbeats = 0;
  readonly inflights: Inflights;

  constructor(
    readonly id: NodeId,
    nextIndex: number,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.nextIndex = nextIndex;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot's index.
    const next = this.state === 'snapshot' ? Math.max(this.matchIndex + 1, this.pendingSnapshot + 1) : this.matchIndex + 1;
    this.state = 'probe';
    this.nextIndex = next;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.stalledHeartbeats = 0;
    this.nextIndex = this.matchIndex + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = snapshotIndex;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  /** Records a successful AppendEntries up to `index`; false if it told us nothing new. */
  maybeUpdate(index: number): boolean {
    if (index <= this.matchIndex) return false;
    this.matchIndex = index;
    if (this.nextIndex <= index) this.nextIndex = index + 1;
    this.probeSent = false;
    return true;
  }

  /** May the leader send this follower another AppendEntries now? */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.isFull();
      case 'snapshot':
        return true;
      default: {
        const never: never = this.state;
        return never;
      }
    }
  }
}
