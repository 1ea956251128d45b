// The key-value service on one node: turns API calls into proposals and reads against the
// RaftNode, with deadlines (504: outcome unknown), leadership errors (503 + Retry-After), the
// three read consistencies, and the registry of member addresses.
import { NotLeaderError, ProposalDroppedError, RaftError, isVoter, members as configMembers, type NodeId } from '../raft/index.js';
import type { Applied, RaftNode } from '../node/index.js';
import { ApiError } from './errors.js';
import type { Consistency, KvApi, KvRecordView, MemberView, StatusView, WriteConditions } from './http-api.js';
import { encodeMemberRecord, type MemberAddresses, type ServiceStateMachine } from './member-registry.js';

/** What the service needs of the key-value state machine; src/server/kv-backend.ts adapts src/kv/. */
export interface KvBackend<R> {
  encodePut(key: string, value: Uint8Array, cond: WriteConditions, time: number, idempotencyKey: string | undefined): Uint8Array;
  encodeDelete(key: string, cond: WriteConditions, time: number, idempotencyKey: string | undefined): Uint8Array;
  /** Validates a transaction body (ApiError BAD_REQUEST when malformed) and encodes it. */
  encodeTxn(body: unknown, time: number, idempotencyKey: string | undefined): Uint8Array;
  putResult(result: R | undefined): { index: number };
  deleteResult(result: R | undefined): { index: number; deleted: boolean };
  txnResult(result: R | undefined): unknown;
  get(key: string): KvRecordView | null;
  list(prefix: string, limit: number): { items: KvRecordView[]; more: boolean };
  validateKey(key: string): void;
  validateValue(value: Uint8Array): void;
}

export interface KvServiceOptions<R> {
  readonly node: RaftNode<R | undefined>;
  readonly stateMachine: ServiceStateMachine<R>;
  readonly backend: KvBackend<R>;
  readonly self: MemberAddresses;
}

export class KvService<R> implements KvApi {
  readonly id: NodeId;
  private readonly node: RaftNode<R | undefined>;
  private readonly sm: ServiceStateMachine<R>;
  private readonly backend: KvBackend<R>;
  private readonly self: MemberAddresses;

  constructor(options: KvServiceOptions<R>) {
    this.node = options.node;
    this.id = options.node.id;
    this.sm = options.stateMachine;
    this.backend = options.backend;
    this.self = options.self;
  }

  isLeader(): boolean {
    return this.node.isLeader;
  }

  leaderUrl(): string | null {
    const leader = this.node.leaderId;
    if (leader === null) return null;
    const addr = leader === this.id ? this.self.clientAddr : this.sm.addresses.get(leader)?.clientAddr;
    return addr === undefined || addr === '' ? null : `http://${addr}`;
  }

  async put(key: string, value: Uint8Array, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number): Promise<{ index: number }> {
    const applied = await this.propose(this.backend.encodePut(key, value, cond, Date.now(), idempotencyKey), deadline);
    return this.backend.putResult(applied.result);
  }

  async delete(key: string, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number): Promise<{ index: number; deleted: boolean }> {
    const applied = await this.propose(this.backend.encodeDelete(key, cond, Date.now(), idempotencyKey), deadline);
    return this.backend.deleteResult(applied.result);
  }

  async txn(body: unknown, idempotencyKey: string | undefined, deadline: number): Promise<unknown> {
    const applied = await this.propose(this.backend.encodeTxn(body, Date.now(), idempotencyKey), deadline);
    return this.backend.txnResult(applied.result);
  }

  async readBarrier(consistency: Consistency, deadline: number): Promise<void> {
    if (consistency === 'stale') return;
    if (consistency === 'lease') {
      const index = this.node.core.leaseReadIndex();
      if (index !== null) {
        await withDeadline(this.node.waitApplied(index), deadline, 'the read');
        return;
      }
      // The lease lapsed (or is not yet established): fall back to a ReadIndex round.
    }
    try {
      await withDeadline(this.node.readIndex(), deadline, 'the read');
    } catch (err) {
      throw toApiError(err);
    }
  }

  get(key: string): KvRecordView | null {
    return this.backend.get(key);
  }

  list(prefix: string, limit: number): { items: KvRecordView[]; more: boolean } {
    return this.backend.list(prefix, limit);
  }

  validateKey(key: string): void {
    this.backend.validateKey(key);
  }

  validateValue(value: Uint8Array): void {
    this.backend.validateValue(value);
  }

  status(): StatusView {
    const core = this.node.core;
    return {
      id: this.id,
      role: core.role,
      term: core.currentTerm,
      leader: core.leaderId,
      commitIndex: core.commitIndex,
      appliedIndex: this.node.appliedIndex,
      lastIndex: core.lastIndex,
      members: this.members(),
    };
  }

  members(): readonly MemberView[] {
    const config = this.node.core.config;
    return configMembers(config).map((id) => {
      const a = id === this.id ? this.self : this.sm.addresses.get(id);
      return { id, peerAddr: a?.peerAddr ?? '', clientAddr: a?.clientAddr ?? '', role: isVoter(config, id) ? 'voter' : 'learner' };
    });
  }

  /** Leader only: records a member's addresses in the replicated registry if they changed. */
  async registerAddresses(id: NodeId, addresses: MemberAddresses, deadline: number): Promise<void> {
    const known = this.sm.addresses.get(id);
    const same = known !== undefined && known.peerAddr === addresses.peerAddr && known.clientAddr === addresses.clientAddr;
    if (same && (addresses.wantsVoter === undefined || known.wantsVoter === addresses.wantsVoter)) return;
    await this.propose(encodeMemberRecord(id, { ...addresses, ...(addresses.wantsVoter === undefined && known?.wantsVoter ? { wantsVoter: true } : {}) }), deadline);
  }

  /** Leader only: forgets a removed member's addresses. */
  async forgetAddresses(id: NodeId, deadline: number): Promise<void> {
    if (!this.sm.addresses.has(id)) return;
    await this.propose(encodeMemberRecord(id, null), deadline);
  }

  hasRegistered(id: NodeId, addresses: MemberAddresses): boolean {
    const known = this.sm.addresses.get(id);
    return known !== undefined && known.peerAddr === addresses.peerAddr && known.clientAddr === addresses.clientAddr;
  }

  private async propose(data: Uint8Array, deadline: number): Promise<Applied<R | undefined>> {
    let pending: Promise<Applied<R | undefined>>;
    try {
      pending = this.node.propose(data);
    } catch (err) {
      throw toApiError(err);
    }
    try {
      return await withDeadline(pending, deadline, 'the write');
    } catch (err) {
      throw toApiError(err);
    }
  }
}

class DeadlineError extends Error {}

function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = deadline - Date.now();
  if (ms <= 0) return Promise.reject(new DeadlineError(`${what} did not complete within the request's deadline`));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineError(`${what} did not complete within the request's deadline`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function toApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  if (err instanceof DeadlineError) {
    return new ApiError('TIMEOUT', `${err.message}; the outcome is unknown`);
  }
  if (err instanceof NotLeaderError) return new ApiError('NO_LEADER', err.message);
  if (err instanceof ProposalDroppedError) {
    // "replaced by a newer leader's" means it was never committed: safe to retry.
    return /unknown/.test(err.message) ? new ApiError('TIMEOUT', err.message) : new ApiError('NO_LEADER', err.message);
  }
  // A node that stops with the request in flight cannot say whether it was (or will be)
  // committed: that is an unknown outcome (504), never a 503, which promises "not applied".
  if (err instanceof RaftError && err.code === 'STOPPED') return new ApiError('TIMEOUT', `${err.message}; the outcome is unknown`);
  return err;
}
