// Learners never vote (thesis §4.2.1: they "do not count toward majorities"), and a leader is
// elected by a majority of the voters of its configuration — of both sets under joint consensus
// (thesis §4.3). Observed on the wire:
//   - every RequestVote (real or pre-vote) goes only to a voter of a configuration the candidate
//     campaigned under in that term (a candidate's queued requests may leave after its
//     configuration moved on, so every configuration seen while campaigning in the term counts);
//   - every granted vote a node sends is recorded per (term, candidate);
//   - when a node is first seen leading a term, the voters of its configuration that granted it
//     a vote in that term, plus itself, MUST form a majority of each voter set. A core that
//     counted a learner's (or a removed server's) vote would win without one and is caught.
// The majority arithmetic is this file's own, not the core's quorum.ts.
import type { NodeId, RequestVote, RequestVoteResponse } from '../../raft/index.js';
import type { MemberView } from './violation.js';
import { violation } from './violation.js';

export class VoterQuorum {
  /** "term candidate" → the nodes that sent it a granted (real) vote in that term. */
  private readonly grants = new Map<string, Set<NodeId>>();
  private readonly checkedTerm: number[];
  /** Per node, for its last few campaigns ("v<term>" or "p<term>" as the requests carry it): the voters it may ask. */
  private readonly mayAsk: Map<string, Set<NodeId>>[];

  constructor(nodes: number) {
    this.checkedTerm = new Array<number>(nodes).fill(0);
    this.mayAsk = Array.from({ length: nodes }, () => new Map<string, Set<NodeId>>());
  }

  /** Node `slot`, whose core is `node`, sends a vote request (its Ready may complete at once). */
  request(slot: number, m: RequestVote, node: MemberView): void {
    this.observe(slot, node);
    if (this.mayAsk[slot]!.get(`${m.preVote ? 'p' : 'v'}${m.term}`)?.has(m.to) !== true) {
      violation('Voter Quorum', `${m.from} asks ${m.to} for a ${m.preVote ? 'pre-vote' : 'vote'} in term ${m.term}, but ${m.to} is not a voter of any configuration it campaigned under in that term`);
    }
  }

  grant(m: RequestVoteResponse): void {
    if (!m.voteGranted || m.preVote) return;
    const key = `${m.term} ${m.to}`;
    let set = this.grants.get(key);
    if (set === undefined) this.grants.set(key, (set = new Set()));
    set.add(m.from);
  }

  observe(slot: number, node: MemberView): void {
    if (node.role === 'candidate' || node.role === 'pre-candidate') {
      const key = node.role === 'pre-candidate' ? `p${node.currentTerm + 1}` : `v${node.currentTerm}`;
      const campaigns = this.mayAsk[slot]!;
      let ask = campaigns.get(key);
      if (ask === undefined) {
        campaigns.set(key, (ask = new Set<NodeId>()));
        if (campaigns.size > 4) campaigns.delete(campaigns.keys().next().value!);
      }
      for (const id of node.config.voters) ask.add(id);
      for (const id of node.config.votersOutgoing) ask.add(id);
      return;
    }
    if (node.role !== 'leader' || this.checkedTerm[slot] === node.currentTerm) return;
    this.checkedTerm[slot] = node.currentTerm;
    const votes = this.grants.get(`${node.currentTerm} ${node.id}`);
    const has = (id: NodeId): boolean => id === node.id || votes?.has(id) === true;
    const c = node.config;
    if (!isMajority(c.voters, has) || !isMajority(c.votersOutgoing, has)) {
      violation('Voter Quorum', `${node.id} leads term ${node.currentTerm} with votes from {${[node.id, ...(votes ?? [])].join(',')}}, not a majority of the voters of ${JSON.stringify(c)}`);
    }
    if (this.grants.size > 4096) this.forgetBefore(node.currentTerm - 64);
  }

  reset(slot: number): void {
    this.checkedTerm[slot] = 0;
    this.mayAsk[slot]!.clear();
  }

  private forgetBefore(term: number): void {
    for (const key of this.grants.keys()) if (Number(key.split(' ')[0]) < term) this.grants.delete(key);
  }
}

function isMajority(voters: readonly NodeId[], has: (id: NodeId) => boolean): boolean {
  if (voters.length === 0) return true;
  let n = 0;
  for (const id of voters) if (has(id)) n++;
  return 2 * n > voters.length;
}
