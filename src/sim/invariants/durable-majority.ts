// Durable Majority: when a leader moves its commit index to c, the entry at c is of its own term
// (§5.4.2) and is held by the storage of a majority of its configuration's voters, a majority of
// each half of a joint one (§4.3 of the thesis). Each copy is checked against what that server's
// storage really holds (DurableLogs: the writes its syncs made durable, snapshots it installed,
// what a restart loaded), so a leader that counted its own copy before its sync (§10.2.1), a
// follower's acknowledgement sent before its write was durable, or a quorum computed over the
// wrong voters, is caught at the commit, not only once a crash loses a committed entry.
//
// Only a leader's own count is checked here: a follower learns its commit index from its leader
// (whose configuration may already differ from the follower's), and a follower's own count is
// Counted Commit's. The baseline is taken without a check when a server becomes leader (the
// commit index it brings from its time as a follower) and whenever it restarts.
import { isJoint, type NodeId } from '../../raft/index.js';
import type { DurableLogs } from './counted-commit.js';
import { violation, type MemberView } from './violation.js';

export class DurableMajority {
  /** Per slot: the term it last led in, and its commit index when last seen leading (-1: not leading). */
  private readonly ledTerm: number[];
  private readonly commitSeen: number[];
  /** Leader commits checked, over the run. */
  checked = 0;

  constructor(
    nodes: number,
    private readonly logs: DurableLogs,
  ) {
    this.ledTerm = new Array<number>(nodes).fill(0);
    this.commitSeen = new Array<number>(nodes).fill(-1);
  }

  /** Slot `slot` restarted or hosts a new server: whatever it commits next as leader is new. */
  reset(slot: number): void {
    this.ledTerm[slot] = 0;
    this.commitSeen[slot] = -1;
  }

  observe(slot: number, node: MemberView): void {
    // Its own id names this slot's storage (Counted Commit notes it too; neither relies on the other).
    this.logs.seen(node.id, slot);
    if (node.role !== 'leader') {
      this.commitSeen[slot] = -1;
      return;
    }
    const commit = node.commitIndex;
    if (this.ledTerm[slot] !== node.currentTerm || this.commitSeen[slot]! < 0) {
      this.ledTerm[slot] = node.currentTerm;
      this.commitSeen[slot] = commit;
      return;
    }
    if (commit <= this.commitSeen[slot]!) return;
    this.commitSeen[slot] = commit;
    this.checked++;
    const term = node.termAt(commit);
    const what = `leader ${node.id} (term ${node.currentTerm}) committed ${commit}`;
    if (term !== node.currentTerm) violation('Durable Majority', `${what}, an entry of term ${term}: only an entry of its own term is committed by counting (§5.4.2)`);
    const config = node.config;
    this.checkHalf(what, config.voters, commit, term);
    if (isJoint(config)) this.checkHalf(what, config.votersOutgoing, commit, term);
  }

  private checkHalf(what: string, voters: readonly NodeId[], index: number, term: number): void {
    const holding = voters.filter((id) => this.logs.holds(id, index, term));
    if (holding.length * 2 <= voters.length) {
      violation('Durable Majority', `${what}, but only ${holding.length} of the voters ${voters.join(', ')} hold it durably${holding.length > 0 ? ` (${holding.join(', ')})` : ''}`);
    }
  }
}
