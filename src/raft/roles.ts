// Role transitions (§5.2, thesis §9.6): follower, pre-candidate, candidate, leader, and the
// randomized election timer that each transition resets.
import { EMPTY_DATA } from './log.js';
import { lastConfigIndex, syncProgresses } from './membership.js';
import { dropStaleAcknowledgements } from './outbox.js';
import type { Raft } from './raft.js';
import type { NodeId } from './types.js';

export function becomeFollower(r: Raft, term: number, leader: NodeId | null): void {
  if (term > r.term) {
    r.term = term;
    r.vote = null;
  }
  r.currentRole = 'follower';
  r.leader = leader;
  r.transferee = null;
  // What we knew of a leader's log is about that leader's: start again from what is committed,
  // which every later leader holds (§5.4).
  r.leaderMatch = r.commit;
  r.leaderStable = 0;
  if (r.messagesAfterSync.length > 0) dropStaleAcknowledgements(r);
  resetTimers(r);
  r.reads.clear();
}

export function becomePreCandidate(r: Raft): void {
  // Thesis §9.6: a pre-candidate keeps its term; only a won pre-vote lets it bump the term.
  r.currentRole = 'pre-candidate';
  r.leader = null;
  resetTimers(r);
}

export function becomeCandidate(r: Raft): void {
  r.term++;
  r.vote = r.id;
  r.currentRole = 'candidate';
  r.leader = null;
  resetTimers(r);
}

export function becomeLeader(r: Raft): void {
  r.currentRole = 'leader';
  r.leader = r.id;
  r.transferee = null;
  resetTimers(r);
  r.progresses.clear();
  r.departing.clear();
  r.announcedStable = 0;
  r.stableSentMax = 0;
  syncProgresses(r);
  // A configuration entry of an earlier term may still be uncommitted: treat it as in flight.
  r.pendingConfigIndex = lastConfigIndex(r);
  // §8: a no-op entry of the new term lets the leader learn, and commit, everything before it.
  r.log.appendOne({ index: r.log.lastIndex + 1, term: r.term, type: 'normal', data: EMPTY_DATA });
  afterLeaderAppend(r);
}

function resetTimers(r: Raft): void {
  r.electionElapsed = 0;
  r.heartbeatElapsed = 0;
  r.votes.clear();
  // §5.2: randomized in [electionTicks, 2 × electionTicks) so split votes are rare.
  r.randomizedElectionTimeout = r.opts.electionTicks + Math.floor(r.random() * r.opts.electionTicks);
}

/**
 * Thesis §4.2.3: within an election timeout of hearing from a leader, a server may be part of
 * that leader's lease (§6.4.1), so it must not help elect another. A server that restarted cannot
 * know whether it was, so it counts as in a lease for its first election timeout: the lease it
 * may have been part of began before the crash and ends within that time. Ticks it was known to
 * be down (`downTicks`: no earlier than the crash) are part of that time.
 */
export function inLease(r: Raft): boolean {
  if (!r.opts.checkQuorum) return false;
  if (r.leader !== null && r.electionElapsed < r.opts.electionTicks) return true;
  return r.opts.restarted && r.ticks + r.opts.downTicks < r.opts.electionTicks;
}

export function afterLeaderAppend(r: Raft): void {
  // Proposals between two Readies leave in one AppendEntries per follower, not one each.
  r.hasUnsentEntries = true;
}
