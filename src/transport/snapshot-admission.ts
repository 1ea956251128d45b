// Which inbound snapshot streams may start (§7). Checked at SNAP_BEGIN, BEFORE anything is
// allocated: at most one transfer per sending peer, and the sizes the transfers in progress
// announced fit together within maxSnapshotBytes. A transfer holds its reservation until it
// ends in any way (delivered, discarded, connection closed), so memory for snapshots in
// assembly is bounded by maxSnapshotBytes whatever peers announce.
import type { NodeId } from '../raft/types.js';

export interface SnapshotReservation {
  readonly peer: NodeId;
  readonly bytes: number;
}

export class SnapshotAdmission {
  private readonly active = new Set<NodeId>();
  private reserved = 0;

  constructor(private readonly maxBytes: number) {}

  get reservedBytes(): number {
    return this.reserved;
  }

  /** A reservation, or the reason it cannot be had. */
  admit(peer: NodeId, bytes: number): SnapshotReservation | string {
    if (bytes > this.maxBytes) return `snapshot of ${bytes} bytes exceeds the limit of ${this.maxBytes}`;
    // A second stream from the same sender is a stale retry or an attack; either way the
    // first one decides. A half-open first stream is ended by the idle timeout.
    if (this.active.has(peer)) return `a snapshot transfer from ${peer} is already in progress`;
    if (this.reserved + bytes > this.maxBytes) {
      return `snapshot of ${bytes} bytes would exceed the budget (${this.reserved} of ${this.maxBytes} bytes in progress)`;
    }
    this.active.add(peer);
    this.reserved += bytes;
    return { peer, bytes };
  }

  release(r: SnapshotReservation): void {
    this.active.delete(r.peer);
    this.reserved -= r.bytes;
  }
}
