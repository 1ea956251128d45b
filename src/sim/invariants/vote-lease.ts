// Removed and partitioned servers cannot disrupt a healthy leader (thesis §4.2.3, with
// CheckQuorum §6.2): "if a server receives a RequestVote request within the minimum election
// timeout of hearing from a current leader, it does not update its term or grant its vote."
// A removed server that keeps running hears no leader, times out and campaigns from its stale
// configuration; this rule is what keeps it harmless. Checked on delivery: a follower that
// accepted an AppendEntries or InstallSnapshot from its leader less than `leaseMs` of simulated
// time ago (the minimum election timeout less the clock drift) MUST NOT move to a higher term,
// nor grant a vote, because of a RequestVote that is not part of a leadership transfer.
import type { Message } from '../../raft/index.js';
import type { MemberView } from './violation.js';
import { violation } from './violation.js';

export interface LeaseView extends MemberView {
  readonly leaderId: string | null;
}

export class VoteLease {
  /** Per node: simulated time it last accepted its leader's AppendEntries/InstallSnapshot. */
  private readonly heardAt: number[];
  private readonly heardTerm: number[];
  private readonly heardFrom: (string | null)[];
  /** RequestVotes that reached a server in its lease and were (rightly) ignored. */
  ignored = 0;
  /** Of those, the ones from a server outside the receiver's configuration (a removed one). */
  ignoredFromOutsiders = 0;
  private termBefore = 0;
  private leaderBefore: string | null = null;
  private voteBefore: string | null = null;

  constructor(
    nodes: number,
    private readonly leaseMs: number,
  ) {
    this.heardAt = new Array<number>(nodes).fill(Number.NEGATIVE_INFINITY);
    this.heardTerm = new Array<number>(nodes).fill(0);
    this.heardFrom = new Array<string | null>(nodes).fill(null);
  }

  /** Just before node `slot` steps `m`. */
  before(node: LeaseView): void {
    this.termBefore = node.currentTerm;
    this.leaderBefore = node.role === 'follower' ? node.leaderId : null;
    this.voteBefore = node.votedFor;
  }

  /** Just after node `slot` stepped `m` at simulated time `now`. */
  after(slot: number, node: LeaseView, m: Message, now: number): void {
    if ((m.type === 'AppendEntries' || m.type === 'InstallSnapshot') && node.role === 'follower' && node.leaderId === m.from && node.currentTerm === m.term) {
      this.heardAt[slot] = now;
      this.heardTerm[slot] = m.term;
      this.heardFrom[slot] = m.from;
      return;
    }
    if (m.type !== 'RequestVote' || m.transfer || m.term <= this.termBefore) return;
    const inLease =
      this.leaderBefore !== null &&
      this.heardFrom[slot] === this.leaderBefore &&
      this.heardTerm[slot] === this.termBefore &&
      now - this.heardAt[slot]! < this.leaseMs;
    if (!inLease) return;
    const voted = node.votedFor !== this.voteBefore;
    if (node.currentTerm !== this.termBefore || voted) {
      violation('Vote Lease', `${node.id} heard leader ${this.leaderBefore} of term ${this.termBefore} ${(now - this.heardAt[slot]!).toFixed(0)} ms ago, yet a ${m.preVote ? 'pre-vote' : 'vote'} request from ${m.from} for term ${m.term} moved it to term ${node.currentTerm}${voted ? `, voting for ${node.votedFor ?? 'nobody'}` : ''}`);
    }
    this.ignored++;
    const c = node.config;
    if (!c.voters.includes(m.from) && !c.votersOutgoing.includes(m.from) && !c.learners.includes(m.from)) this.ignoredFromOutsiders++;
  }

  reset(slot: number): void {
    this.heardAt[slot] = Number.NEGATIVE_INFINITY;
    this.heardFrom[slot] = null;
  }
}
