// Majority arithmetic (§5.2, §5.3) and its joint-consensus form (thesis §4.3): under C_old,new an
// election or a commit needs a majority of C_old AND a majority of C_new.
import type { Configuration, NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The highest index stored on a majority of `voters`, given each voter's match index.
 * With no voters the set imposes no constraint (the other half of a joint config decides).
 */
export function majorityIndex(voters: readonly NodeId[], matchIndex: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  if (n === 1) return matchIndex(voters[0]!);
  const sorted = new Array<number>(n);
  for (let i = 0; i < n; i++) sorted[i] = matchIndex(voters[i]!);
  sorted.sort((a, b) => b - a);
  // With the indexes sorted high to low, the (⌊n/2⌋+1)-th is held by a majority.
  return sorted[n >> 1]!;
}

/** The highest index committed by the quorum rule of the configuration in force. */
export function committedIndex(config: Configuration, matchIndex: (id: NodeId) => number): number {
  const incoming = majorityIndex(config.voters, matchIndex);
  const outgoing = majorityIndex(config.votersOutgoing, matchIndex);
  return Math.min(incoming, outgoing);
}

export function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const needed = (voters.length >> 1) + 1;
  if (granted >= needed) return 'won';
  if (rejected > voters.length - needed) return 'lost';
  return 'pending';
}

export function voteResult(config: Configuration, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(config.voters, votes);
  const b = majorityVote(config.votersOutgoing, votes);
  if (a === 'won' && b === 'won') return 'won';
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}

/** True if the servers for which `isActive` holds form a quorum of the configuration. */
export function hasQuorum(config: Configuration, isActive: (id: NodeId) => boolean): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of config.voters) votes.set(id, isActive(id));
  for (const id of config.votersOutgoing) votes.set(id, isActive(id));
  return voteResult(config, votes) === 'won';
}
