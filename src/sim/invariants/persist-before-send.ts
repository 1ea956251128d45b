// Persist before you speak (Figure 2: persistent state is "updated on stable storage before
// responding to RPCs"), as the Ready contract spells it out (raft/types.ts, `Ready`). Every
// message is checked as it leaves its node against what that node's storage holds durably at
// that moment:
//   - a message that leaves before its Ready's sync is of a kind allowed to (a leader's
//     AppendEntries, InstallSnapshot, TimeoutNow or Removed, thesis §10.2.1; a pre-vote, §9.6);
//   - no message but a pre-vote carries a term above the durable currentTerm;
//   - a RequestVote goes out only once the candidate's own vote for itself in that term is
//     durable (a granted vote is Single Vote's to check);
//   - an acknowledgement (AppendEntriesResponse, InstallSnapshotResponse) claims no index beyond
//     the durable log's last one.
import type { Entry, HardState, Message, SnapshotMeta } from '../../raft/index.js';
import { violation } from './violation.js';

export class PersistBeforeSend {
  /** Per slot: the last index of the log on stable storage. */
  private readonly durableLastIndex: number[];

  constructor(nodes: number) {
    this.durableLastIndex = new Array<number>(nodes).fill(0);
  }

  /** A sync made `entries` durable (each batch overwrites the stored log from its first index). */
  synced(slot: number, entries: readonly Entry[]): void {
    if (entries.length > 0) this.durableLastIndex[slot] = entries[entries.length - 1]!.index;
  }

  /** A leader's snapshot was installed: the stored log restarts after it (§7). */
  installed(slot: number, meta: SnapshotMeta): void {
    this.durableLastIndex[slot] = meta.index;
  }

  /** The node (re)started from storage holding a log that ends at `lastIndex`. */
  restart(slot: number, lastIndex: number): void {
    this.durableLastIndex[slot] = lastIndex;
  }

  reset(slot: number): void {
    this.durableLastIndex[slot] = 0;
  }

  /** Node `slot` sends `m`; `durable` is its hard state on stable storage right now. */
  send(slot: number, m: Message, durable: HardState, isBeforeSync: boolean): void {
    const isPreVote = (m.type === 'RequestVote' || m.type === 'RequestVoteResponse') && m.preVote;
    if (isBeforeSync && !isPreVote && m.type !== 'AppendEntries' && m.type !== 'InstallSnapshot' && m.type !== 'TimeoutNow' && m.type !== 'Removed') {
      violation('Persist Before Send', `${m.from} sends ${m.type} to ${m.to} before its Ready's writes are durable`);
    }
    if (isPreVote) return;
    if (m.term > durable.currentTerm) {
      violation('Persist Before Send', `${m.from} sends ${m.type} of term ${m.term} to ${m.to} while stable storage holds term ${durable.currentTerm}`);
    }
    if (m.type === 'RequestVote') {
      // A request of an older term than the durable one is stale (made before a newer term came
      // in, sent with it): no one it reaches can help it lead a term its sender has left.
      if (durable.currentTerm === m.term && durable.votedFor !== m.from) {
        violation('Persist Before Send', `${m.from} asks ${m.to} for its vote in term ${m.term} while stable storage holds term ${durable.currentTerm}, votedFor ${durable.votedFor ?? 'nobody'}`);
      }
      return;
    }
    // A successful AppendEntriesResponse, or any InstallSnapshotResponse, says "I hold these".
    if ((m.type === 'AppendEntriesResponse' && m.success) || m.type === 'InstallSnapshotResponse') {
      const last = this.durableLastIndex[slot]!;
      if (m.matchIndex > last) {
        violation('Persist Before Send', `${m.from} acknowledges index ${m.matchIndex} to ${m.to} (${m.type}) while its stable log ends at ${last}`);
      }
    }
  }
}
