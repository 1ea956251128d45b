// At most one vote per term per node (Figure 2, RequestVote: "votedFor ... candidateId that
// received vote in current term"; §5.2 "each server will vote for at most one candidate in a
// given term"). Checked three ways:
//   - in memory, per incarnation: votedFor never changes within a term;
//   - on stable storage, across crashes: the persisted votedFor never changes within a term;
//   - on the wire: a granted vote leaves only once it is durable (the persisted term is past the
//     vote's, or equal with votedFor = the candidate), and no node ever grants two candidates
//     votes in one term, whatever it forgot in between.
import type { HardState, NodeId, RequestVoteResponse } from '../../raft/index.js';
import type { NodeView } from './violation.js';
import { violation } from './violation.js';

export class SingleVote {
  private readonly termSeen: number[];
  private readonly voteSeen: (NodeId | null)[];
  private readonly durableTerm: number[];
  private readonly durableVote: (NodeId | null)[];
  /** Per node: term → the candidate it granted a vote to on the wire. */
  private readonly granted: Map<number, NodeId>[];

  constructor(nodes: number) {
    this.termSeen = new Array<number>(nodes).fill(0);
    this.voteSeen = new Array<NodeId | null>(nodes).fill(null);
    this.durableTerm = new Array<number>(nodes).fill(0);
    this.durableVote = new Array<NodeId | null>(nodes).fill(null);
    this.granted = Array.from({ length: nodes }, () => new Map<number, NodeId>());
  }

  observe(slot: number, node: NodeView): void {
    if (node.currentTerm !== this.termSeen[slot]) {
      this.termSeen[slot] = node.currentTerm;
      this.voteSeen[slot] = node.votedFor;
      return;
    }
    const was = this.voteSeen[slot]!;
    if (node.votedFor !== was) {
      if (was !== null) violation('Single Vote', `${node.id} changed its vote in term ${node.currentTerm} from ${was} to ${node.votedFor ?? 'nobody'}`);
      this.voteSeen[slot] = node.votedFor;
    }
  }

  durable(slot: number, nodeId: string, hs: HardState): void {
    if (hs.currentTerm === this.durableTerm[slot]) {
      const was = this.durableVote[slot]!;
      if (was !== null && hs.votedFor !== was) {
        violation('Single Vote', `${nodeId}'s persisted vote in term ${hs.currentTerm} changed from ${was} to ${hs.votedFor ?? 'nobody'}`);
      }
    }
    this.durableTerm[slot] = hs.currentTerm;
    this.durableVote[slot] = hs.votedFor;
  }

  /** A restarted node resumes from `hs`; its in-memory view starts there. */
  restart(slot: number, nodeId: string, hs: HardState): void {
    this.durable(slot, nodeId, hs);
    this.termSeen[slot] = hs.currentTerm;
    this.voteSeen[slot] = hs.votedFor;
  }

  /** Node `slot` is sending `m`; `durable` is its hard state on stable storage right now. */
  send(slot: number, m: RequestVoteResponse, durable: HardState): void {
    if (!m.voteGranted || m.preVote) return;
    if (durable.currentTerm < m.term || (durable.currentTerm === m.term && durable.votedFor !== m.to)) {
      violation('Single Vote', `${m.from} sends its vote for ${m.to} in term ${m.term} before it is durable (stable storage holds term ${durable.currentTerm}, votedFor ${durable.votedFor ?? 'nobody'})`);
    }
    const votes = this.granted[slot]!;
    const before = votes.get(m.term);
    if (before !== undefined && before !== m.to) {
      violation('Single Vote', `${m.from} granted votes to both ${before} and ${m.to} in term ${m.term}`);
    }
    votes.set(m.term, m.to);
  }

  crash(slot: number): void {
    this.termSeen[slot] = 0;
    this.voteSeen[slot] = null;
  }

  /** The slot hosts a new server (a new id) with an empty disk. */
  reset(slot: number): void {
    this.crash(slot);
    this.durableTerm[slot] = 0;
    this.durableVote[slot] = null;
    this.granted[slot]!.clear();
  }
}
