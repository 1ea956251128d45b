// Typed errors the core raises. Callers act on `code`; the HTTP layer maps codes to statuses.
import type { NodeId } from './types.js';

export class RaftError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Only the leader accepts proposals and ReadIndex requests (§5.1, thesis §6.4). */
export class NotLeaderError extends RaftError {
  readonly leaderId: NodeId | null;
  constructor(leaderId: NodeId | null) {
    super('NOT_LEADER', leaderId === null ? 'no leader is known' : `not the leader; the leader is ${leaderId}`);
    this.leaderId = leaderId;
  }
}

/**
 * What became of a proposal that did not succeed: `not-applied` (refused, or its entry replaced by
 * a newer leader's: it never will be, a retry is safe) or `unknown` (it may have committed: the
 * state that would tell was replaced by a snapshot, or the wait ended first).
 */
export const PROPOSAL_OUTCOMES = ['not-applied', 'unknown'] as const;
export type ProposalOutcome = (typeof PROPOSAL_OUTCOMES)[number];

/** A proposal that did not succeed for a reason other than leadership; `outcome` says whether it may yet apply. */
export class ProposalDroppedError extends RaftError {
  readonly outcome: ProposalOutcome;
  constructor(reason: string, outcome: ProposalOutcome = 'not-applied') {
    super('PROPOSAL_DROPPED', reason);
    this.outcome = outcome;
  }
}

/** A configuration change refused because another is still in flight (thesis §4.3). */
export class ChangeInProgressError extends RaftError {
  constructor() {
    super('CHANGE_IN_PROGRESS', 'another membership change is in progress');
  }
}
