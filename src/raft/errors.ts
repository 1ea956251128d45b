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

/** A proposal refused for a reason other than leadership (a transfer in progress, a bad size). */
export class ProposalDroppedError extends RaftError {
  constructor(reason: string) {
    super('PROPOSAL_DROPPED', reason);
  }
}

/** A configuration change refused because another is still in flight (thesis §4.3). */
export class ChangeInProgressError extends RaftError {
  constructor() {
    super('CHANGE_IN_PROGRESS', 'another membership change is in progress');
  }
}
