// Elections (§5.2, §5.4.1; PreVote, thesis §9.6): starting a campaign, the RequestVote receiver
// of Figure 2, and tallying votes under the configuration in force (joint: both majorities, §4.3).
import { mayCampaign, voterIds } from './membership.js';
import { voteResult } from './quorum.js';
import { send } from './outbox.js';
import type { Raft } from './raft.js';
import { becomeCandidate, becomeFollower, becomeLeader, becomePreCandidate } from './roles.js';
import { MAX_INDEX, MAX_TERM, type RequestVote, type RequestVoteResponse } from './types.js';

export function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.electionElapsed >= r.randomizedElectionTimeout && mayCampaign(r)) {
    r.campaign();
  }
}

export function startElection(r: Raft, kind: 'pre-vote' | 'vote', transfer: boolean): void {
  if (!mayCampaign(r)) return;
  // A server at MAX_TERM never campaigns: the term it would stand in (or pre-vote for) is one no
  // peer accepts and the codec may not carry. It stays a follower and can still vote for, and
  // follow, a candidate that reaches MAX_TERM from below. Likewise with a full log: a new
  // leader's no-op (§8) would land past MAX_INDEX.
  if (r.term >= MAX_TERM || r.log.lastIndex >= MAX_INDEX) return;
  if (kind === 'pre-vote') becomePreCandidate(r);
  else becomeCandidate(r);
  const preVote = kind === 'pre-vote';
  const term = preVote ? r.term + 1 : r.term;
  r.votes.set(r.id, true);
  if (countVotes(r)) return;
  const lastLogIndex = r.log.lastIndex;
  const lastLogTerm = r.log.lastTerm;
  for (const id of voterIds(r)) {
    if (id === r.id) continue;
    const rv: RequestVote = { type: 'RequestVote', from: r.id, to: id, term, preVote, lastLogIndex, lastLogTerm, transfer };
    send(r, rv);
  }
}

/** Tallies votes; on a decision acts on it and returns true. */
export function countVotes(r: Raft): boolean {
  const result = voteResult(r.configuration, r.votes);
  if (result === 'won') {
    if (r.currentRole === 'pre-candidate') startElection(r, 'vote', false);
    else becomeLeader(r);
    return true;
  }
  if (result === 'lost') {
    becomeFollower(r, r.term, null);
    return true;
  }
  return false;
}

/** Figure 2, RequestVote receiver; thesis §9.6 for pre-votes. */
export function handleRequestVote(r: Raft, m: RequestVote): void {
  const canVote =
    r.vote === m.from ||
    (r.vote === null && r.leader === null) ||
    (m.preVote && m.term > r.term);
  const grant = canVote && r.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
  const response: RequestVoteResponse = {
    type: 'RequestVoteResponse',
    from: r.id,
    to: m.from,
    // A grant carries the term asked about, so a pre-candidate can tell it from stale grants.
    term: grant ? m.term : r.term,
    preVote: m.preVote,
    voteGranted: grant,
  };
  if (grant && !m.preVote) {
    // One vote per term: recorded in hardState, which is durable BEFORE this response leaves.
    r.vote = m.from;
    r.electionElapsed = 0;
  }
  send(r, response);
}
