// The key-value service on one node: turns API calls into proposals and reads against the
// RaftNode, with deadlines (504: outcome unknown), leadership errors (503 + Retry-After), the
// three read consistencies, and the registry of member addresses.
import { withDeadline as boundedBy } from './deadline.js';
import { ProposalDroppedError, isVoter, members as configMembers, type NodeId } from '../raft/index.js';
import type { Applied, RaftNode } from '../node/index.js';
import { isAddress, isNodeId } from './address.js';
import { ApiError, toApiError } from './errors.js';
import type { Consistency, ForwardedRequest, ForwardedResponse, KvApi, KvRecordView, MemberView, ReadyView, StatusView, WriteConditions } from './http-api.js';
import { encodeClusterIdRecord, encodeMemberRecord, type MemberAddresses, type ServiceStateMachine } from './member-registry.js';
import type { PeerRequest } from './forward.js';
import { ProposalForwarder, appendForwarded, type ForwardedProposal, type ProposalsAnswer } from './proposals.js';
import type { Action } from './auth.js';

/** What the service needs of the key-value state machine; src/server/kv-backend.ts adapts src/kv/. */
export interface KvBackend<R> {
  encodePut(key: string, value: Uint8Array, cond: WriteConditions, time: number, idempotencyKey: string | undefined): Uint8Array;
  encodeDelete(key: string, cond: WriteConditions, time: number, idempotencyKey: string | undefined): Uint8Array;
  /**
   * Validates a transaction body (ApiError BAD_REQUEST when malformed) and encodes it; the state
   * machine refuses it whole if its answer would exceed `maxReplyBytes`. `grows`: it writes keys.
   */
  encodeTxn(body: unknown, time: number, idempotencyKey: string | undefined, maxReplyBytes: number): { data: Uint8Array; grows: boolean };
  /**
   * Checks a command another member encoded and forwarded (ApiError when it is not a valid
   * write); `grows`: it writes keys; `actions`: what it reads and writes, for permissions.
   */
  checkEncoded(data: Uint8Array): { grows: boolean; actions: Action[] };
  /** Bytes the store holds, as --quota-bytes counts them. */
  sizeBytes(): number;
  putResult(result: R | undefined): { index: number; revision: number };
  deleteResult(result: R | undefined): { index: number; deleted: boolean; revision: number };
  txnResult(result: R | undefined): unknown;
  get(key: string, revision?: number): KvRecordView | null;
  /** At most `limit` records whose JSON listing fits `maxBytes`; `more` when any were left out. */
  list(prefix: string, limit: number, maxBytes: number, revision?: number): { items: readonly KvRecordView[]; more: boolean };
  revision(): number;
  validateKey(key: string): void;
  validateValue(value: Uint8Array): void;
}

export interface KvServiceOptions<R> {
  readonly node: RaftNode<R | undefined>;
  readonly stateMachine: ServiceStateMachine<R>;
  readonly backend: KvBackend<R>;
  readonly self: MemberAddresses;
  /** @default 2 GiB — writes that would grow the store past it answer 507 NO_SPACE */
  readonly quotaBytes?: number;
  /** The local disk is full (the storage layer's alarm). */
  readonly isDiskFull?: () => boolean;
  /** Asks the leader over the peer channel (for /readyz on a follower). */
  readonly forward?: (req: ForwardedRequest) => Promise<ForwardedResponse>;
  /** The longest a readiness check waits for a quorum and for this node to apply. @default 2000 */
  readonly readyTimeoutMs?: number;
  /** How clients reach every member's client address. @default 'http' */
  readonly scheme?: 'http' | 'https';
  /**
   * The peer channel a follower sends its writes over, to the leader, as proposals
   * (proposals.ts); without it, only the leader takes writes.
   */
  readonly proposeVia?: PeerRequest;
  /** How long a forwarded batch waits for the leader's answer. @default 6000 */
  readonly proposeTimeoutMs?: number;
}

export const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;

/** Judges whether the principal a forwarding member names may take `actions` (with --auth-file); throws if not. */
export type Authorize = (principal: string | null, actions: readonly Action[]) => void;

/**
 * What a leader checks of a command another member forwarded, before it appends it: that it is
 * a write this node can decode, that the principal named may make it (`authorize`), and for
 * one that grows the store, that there is room (`space`, given its bytes).
 */
function checkForwarded<R>(backend: KvBackend<R>, { command, principal }: ForwardedProposal, authorize: Authorize | null, space: (bytes: number) => void): void {
  const { grows, actions } = backend.checkEncoded(command);
  authorize?.(principal, actions);
  if (grows) space(command.length);
}

function diskFull(id: NodeId): ApiError {
  return new ApiError('NO_SPACE', `the disk of ${id} is full; writes are refused until space is freed (reads and deletes still work)`);
}

/**
 * The growing writes a leader takes while it still loads its state (appendForwardedWhileLoading):
 * a 64th of --quota-bytes, 16 MiB at most, so past the quota by no more than that.
 */
export function loadingBudgetBytes(quotaBytes: number): number {
  return Math.min(Math.floor(quotaBytes / 64), 16 * 2 ** 20);
}

/**
 * Leader side of proposal batches before this node's service is up (KvService.appendForwarded
 * after): while a restart loads the state machine beside the running core, another member that
 * has loaded its own can take writes, and a leader still loading appends what it forwards
 * instead of refusing it. Nothing here needs the store but the quota, whose size is not known
 * until the load ends: growing commands are taken up to loadingBudgetBytes(quotaBytes) in all,
 * then refused with 503 STARTING (clients retry), so a store at its quota can pass it by that
 * much at most, which the NO_SPACE alarm shows once the load is done (KvService.alarms).
 * Everything else is checked as after: the command, the principal, a full disk.
 */
export function appendForwardedWhileLoading<R>(node: RaftNode<R>, backend: KvBackend<R>, authorize: Authorize | null, quotaBytes: number): (proposals: readonly ForwardedProposal[], from: NodeId) => ProposalsAnswer {
  const budgetBytes = loadingBudgetBytes(quotaBytes);
  let taken = 0;
  return (proposals, from) =>
    appendForwarded(node, proposals, from, (proposal) =>
      checkForwarded(backend, proposal, authorize, (bytes) => {
        if (node.isOutOfSpace) throw diskFull(node.id);
        if (taken + bytes > budgetBytes) throw new ApiError('STARTING', `${node.id} is still loading its state and has taken as much as it takes before it knows the store's size`);
        taken += bytes;
      }),
    );
}

export class KvService<R> implements KvApi {
  readonly id: NodeId;
  private readonly node: RaftNode<R | undefined>;
  private readonly sm: ServiceStateMachine<R>;
  private readonly backend: KvBackend<R>;
  private readonly self: MemberAddresses;
  private readonly quotaBytes: number;
  private readonly options: KvServiceOptions<R>;
  private readonly proposals: ProposalForwarder<R | undefined> | undefined;
  private readonly linearizableReads: ReadIndexBatch = { waiting: [], isAsking: false };
  private readonly leaseReads: ReadIndexBatch = { waiting: [], isAsking: false };
  /** Set when a write was refused for the quota: how many bytes it wanted (the alarm's measure). */
  private quotaWanted: number | null = null;

  constructor(options: KvServiceOptions<R>) {
    this.options = options;
    this.node = options.node;
    this.id = options.node.id;
    this.sm = options.stateMachine;
    this.backend = options.backend;
    this.self = options.self;
    this.quotaBytes = options.quotaBytes ?? DEFAULT_QUOTA_BYTES;
    this.proposals = options.proposeVia === undefined ? undefined : new ProposalForwarder(this.node, options.proposeVia, options.proposeTimeoutMs ?? 6000);
  }

  /** Proposals (writes and membership records) that failed, by the API code they failed with. */
  readonly failedProposals = new Map<string, number>();

  /** Batches and commands this follower has forwarded to leaders as proposals. */
  forwardedStats(): { batches: number; commands: number } {
    return this.proposals?.stats ?? { batches: 0, commands: 0 };
  }

  clusterId(): string | null {
    return this.sm.clusterId;
  }

  isLeader(): boolean {
    return this.node.isLeader;
  }

  /**
   * Whether key reads and writes are answered here rather than forwarded whole: on the leader,
   * and on a follower that proposes and reads through the leader itself. Also while no leader is
   * known, so a request is checked here first (a malformed one is a 400 whoever leads) and
   * answers NO_LEADER only once it is valid (its proposal or read barrier finds no leader).
   */
  servesKv(): boolean {
    return this.node.isLeader || (this.proposals !== undefined && this.options.forward !== undefined);
  }

  /**
   * Leader side of a follower's proposal batch (proposals.ts). `authorize` (with --auth-file)
   * judges the principal the follower names by this node's own file.
   */
  appendForwarded(proposals: readonly ForwardedProposal[], from: NodeId, authorize: Authorize | null): ProposalsAnswer {
    return appendForwarded(this.node, proposals, from, (proposal) => checkForwarded(this.backend, proposal, authorize, (bytes) => this.checkSpace(bytes)));
  }

  leaderUrl(): string | null {
    const leader = this.node.leaderId;
    if (leader === null) return null;
    const addr = leader === this.id ? this.self.clientAddr : this.sm.addresses.get(leader)?.clientAddr;
    return addr === undefined || addr === '' ? null : `${this.options.scheme ?? 'http'}://${addr}`;
  }

  async put(key: string, value: Uint8Array, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number, principal?: string): Promise<{ index: number; revision: number }> {
    const data = this.backend.encodePut(key, value, cond, Date.now(), idempotencyKey);
    const applied = await this.proposeWrite(data, true, deadline, principal);
    return this.backend.putResult(applied.result);
  }

  async delete(key: string, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number, principal?: string): Promise<{ index: number; deleted: boolean; revision: number }> {
    const applied = await this.proposeWrite(this.backend.encodeDelete(key, cond, Date.now(), idempotencyKey), false, deadline, principal);
    return this.backend.deleteResult(applied.result);
  }

  async txn(body: unknown, idempotencyKey: string | undefined, deadline: number, maxReplyBytes: number, principal?: string): Promise<unknown> {
    const { data, grows } = this.backend.encodeTxn(body, Date.now(), idempotencyKey, maxReplyBytes);
    const applied = await this.proposeWrite(data, grows, deadline, principal);
    return this.backend.txnResult(applied.result);
  }

  async readBarrier(consistency: Consistency, deadline: number): Promise<void> {
    if (consistency === 'stale') return;
    if (!this.node.isLeader && this.options.forward !== undefined) {
      // Thesis §6.4: a follower asks the leader for its read index, then reads its own state once
      // it has applied that far; the read itself never leaves this node.
      const index = await this.followerReadIndex(consistency, deadline);
      try {
        await withDeadline(this.node.waitApplied(index), deadline, 'the read');
      } catch (err) {
        throw toApiError(err);
      }
      return;
    }
    if (consistency === 'lease') {
      const index = this.node.leaseReadIndex();
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

  /**
   * The leader's read index for a read on this follower. Reads that arrive while a request is in
   * flight share the next one (a read must not use an index asked for before it arrived).
   */
  private followerReadIndex(consistency: Consistency, deadline: number): Promise<number> {
    const lease = consistency === 'lease';
    const batch = lease ? this.leaseReads : this.linearizableReads;
    return new Promise<number>((resolve, reject) => {
      batch.waiting.push({ resolve, reject, deadline });
      if (!batch.isAsking) void this.askForReadIndex(batch, lease);
    });
  }

  private async askForReadIndex(batch: ReadIndexBatch, lease: boolean): Promise<void> {
    batch.isAsking = true;
    while (batch.waiting.length > 0) {
      const readers = batch.waiting.splice(0);
      const until = Math.max(...readers.map((r) => r.deadline));
      try {
        const leader = this.node.leaderId;
        if (leader === null || leader === this.id) throw new ApiError('NO_LEADER', leader === null ? `${this.id} knows no leader` : `${this.id} just became the leader; retry`);
        const index = await this.askLeaderForReadIndex(leader, until, lease, (reason) => new ApiError('NO_LEADER', reason));
        for (const r of readers) r.resolve(index);
      } catch (err) {
        for (const r of readers) r.reject(err);
      }
    }
    batch.isAsking = false;
  }

  get(key: string, revision?: number): KvRecordView | null {
    return this.backend.get(key, revision);
  }

  list(prefix: string, limit: number, maxBytes: number, revision?: number): { items: readonly KvRecordView[]; more: boolean } {
    return this.backend.list(prefix, limit, maxBytes, revision);
  }

  revision(): number {
    return this.backend.revision();
  }

  /**
   * Proposes an encoded command (a coordination request: compaction, leases) as a client's write
   * is proposed: here on the leader, as a proposal from a follower. Resolves with its result.
   */
  async write(data: Uint8Array, grows: boolean, deadline: number, principal?: string): Promise<R | undefined> {
    return (await this.proposeWrite(data, grows, deadline, principal)).result;
  }

  validateKey(key: string): void {
    this.backend.validateKey(key);
  }

  validateValue(value: Uint8Array): void {
    this.backend.validateValue(value);
  }

  status(): StatusView {
    const s = this.node.status();
    return {
      id: this.id,
      clusterId: this.sm.clusterId,
      role: s.role,
      term: s.currentTerm,
      leader: s.leaderId,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      lastIndex: s.lastIndex,
      members: this.members(),
      alarms: this.alarms(),
    };
  }

  /**
   * API.md "Health and limits": NO_SPACE while the disk is full, or since a write was refused for
   * the quota until that write would fit again (deletes or compaction made room), or while this
   * node's store is past the quota (a follower of a leader with a larger one).
   */
  alarms(): string[] {
    const size = this.backend.sizeBytes();
    if (this.quotaWanted !== null && size + this.quotaWanted <= this.quotaBytes) this.quotaWanted = null;
    const isFull = this.options.isDiskFull?.() === true || this.quotaWanted !== null || size > this.quotaBytes;
    return isFull ? ['NO_SPACE'] : [];
  }

  /** 507 for a write that would grow the store past the quota, or while the disk is full. */
  private checkSpace(bytes: number): void {
    if (this.options.isDiskFull?.() === true) throw diskFull(this.id);
    const size = this.backend.sizeBytes();
    if (size + bytes > this.quotaBytes) {
      this.quotaWanted = bytes;
      throw new ApiError('NO_SPACE', `the store holds ${size} bytes; this write would take it past --quota-bytes (${this.quotaBytes}); delete keys, then compact the history (POST /v1/compact, raftkv compact REV) to make room`);
    }
  }

  /**
   * GET /readyz: a leader this node knows confirms it still holds a quorum (a ReadIndex round,
   * thesis §6.4), and this node has applied what that leader had committed when asked.
   */
  async ready(deadline: number): Promise<ReadyView> {
    const leader = this.node.leaderId;
    if (leader === null) throw notReady(`${this.id} knows no leader`);
    const until = Math.min(deadline, Date.now() + (this.options.readyTimeoutMs ?? 2000));
    let index: number;
    if (leader === this.id) {
      try {
        index = await withDeadline(this.node.readIndex(), until, 'confirming leadership');
      } catch (err) {
        throw notReady(`${this.id} leads but could not confirm a quorum: ${(err as Error).message}`);
      }
    } else {
      index = await this.askLeaderForReadIndex(leader, until, false, notReady);
    }
    try {
      await withDeadline(this.node.waitApplied(index), until, 'applying');
    } catch {
      throw notReady(`${this.id} has applied ${this.node.appliedIndex} of the ${index} entries a read at ${leader} must see`);
    }
    return { ready: true, id: this.id, leader, readIndex: index, appliedIndex: this.node.appliedIndex };
  }

  /**
   * Leader side of a follower's read or readiness check: confirms leadership and answers the read
   * index; `lease`: the leader's lease may stand in for the round (API.md, consistency=lease).
   */
  async readIndexForPeer(deadline: number, lease: boolean): Promise<{ index: number }> {
    const leased = lease ? this.node.leaseReadIndex() : null;
    if (leased !== null) return { index: leased };
    try {
      return { index: await withDeadline(this.node.readIndex(), deadline, 'confirming leadership') };
    } catch (err) {
      throw toApiError(err);
    }
  }

  private async askLeaderForReadIndex(leader: NodeId, until: number, lease: boolean, notReady: (reason: string) => ApiError): Promise<number> {
    const forward = this.options.forward;
    if (forward === undefined) throw notReady(`${this.id} cannot reach the leader ${leader}`);
    let answer: ForwardedResponse;
    try {
      answer = await forward({ method: 'GET', path: `/v1/internal/read-index${lease ? '?lease' : ''}`, headers: { 'request-timeout': String(Math.max(1, until - Date.now())) }, body: new Uint8Array(0) });
    } catch (err) {
      throw notReady(`the leader ${leader} did not answer: ${(err as Error).message}`);
    }
    let body: { index?: unknown; error?: { message?: unknown } };
    try {
      body = JSON.parse(new TextDecoder().decode(answer.body)) as typeof body;
    } catch {
      throw notReady(`the leader ${leader} gave a malformed answer`);
    }
    if (answer.status !== 200 || typeof body.index !== 'number') {
      throw notReady(`the leader ${leader} could not confirm a quorum: ${String(body.error?.message ?? answer.status)}`);
    }
    return body.index;
  }

  /** Leader only: draws the cluster id and commits it (identity.ts), if none is committed yet. */
  async commitClusterId(clusterId: string, deadline: number): Promise<void> {
    if (this.sm.clusterId !== null) return;
    await this.propose(encodeClusterIdRecord(clusterId), deadline);
  }

  members(): readonly MemberView[] {
    const config = this.node.config;
    return configMembers(config).map((id) => {
      const a = id === this.id ? this.self : this.sm.addresses.get(id);
      return { id, peerAddr: a?.peerAddr ?? '', clientAddr: a?.clientAddr ?? '', role: isVoter(config, id) ? 'voter' : 'learner' };
    });
  }

  /** Leader only: records a member's addresses in the replicated registry if they changed. */
  async registerAddresses(id: NodeId, addresses: MemberAddresses, deadline: number): Promise<void> {
    if (!isNodeId(id)) throw new ApiError('BAD_REQUEST', 'a member id is 1-64 letters, digits, ".", "_" or "-"');
    if (!isAddress(addresses.peerAddr) || !isAddress(addresses.clientAddr)) throw new ApiError('BAD_REQUEST', 'peerAddr and clientAddr must be HOST:PORT');
    if (addresses.etcdAddr !== undefined && !isAddress(addresses.etcdAddr)) throw new ApiError('BAD_REQUEST', 'etcdAddr must be HOST:PORT');
    const known = this.sm.addresses.get(id);
    const same = known !== undefined && known.peerAddr === addresses.peerAddr && known.clientAddr === addresses.clientAddr && (addresses.etcdAddr === undefined || known.etcdAddr === addresses.etcdAddr);
    if (same && (addresses.wantsVoter === undefined || known.wantsVoter === addresses.wantsVoter)) return;
    // A record without an etcd address (an add, a join) keeps the one already registered.
    const etcdAddr = addresses.etcdAddr ?? known?.etcdAddr;
    await this.propose(encodeMemberRecord(id, { ...addresses, ...(addresses.wantsVoter === undefined && known?.wantsVoter ? { wantsVoter: true } : {}), ...(etcdAddr !== undefined ? { etcdAddr } : {}) }), deadline);
  }

  /** Leader only: forgets a removed member's addresses. */
  async forgetAddresses(id: NodeId, deadline: number): Promise<void> {
    if (!this.sm.addresses.has(id)) return;
    await this.propose(encodeMemberRecord(id, null), deadline);
  }

  hasRegistered(id: NodeId, addresses: MemberAddresses): boolean {
    const known = this.sm.addresses.get(id);
    // No etcd address given: whatever is registered stands (as registerAddresses keeps it).
    return known !== undefined && known.peerAddr === addresses.peerAddr && known.clientAddr === addresses.clientAddr && (addresses.etcdAddr === undefined || known.etcdAddr === addresses.etcdAddr);
  }

  /** A client's write: proposed here on the leader, forwarded as a proposal by a follower. */
  /**
   * The leader judges the space a write needs (507 and its alarm are the leader's, as the quota is
   * the replicated store's); a follower's proposal is judged there too (appendForwarded).
   */
  private proposeWrite(data: Uint8Array, grows: boolean, deadline: number, principal: string | undefined): Promise<Applied<R | undefined>> {
    const isLeader = this.node.isLeader;
    if (isLeader || this.proposals === undefined) {
      if (grows) this.checkSpace(data.length);
      return this.propose(data, deadline);
    }
    return this.propose(data, deadline, this.proposals, principal);
  }

  private async propose(data: Uint8Array, deadline: number, via?: ProposalForwarder<R | undefined>, principal?: string): Promise<Applied<R | undefined>> {
    let pending: Promise<Applied<R | undefined>>;
    try {
      pending = via === undefined ? this.node.propose(data) : via.propose(data, principal ?? null);
    } catch (err) {
      throw this.proposalFailed(err);
    }
    try {
      return await withDeadline(pending, deadline, 'the write');
    } catch (err) {
      throw this.proposalFailed(err);
    }
  }

  private proposalFailed(err: unknown): unknown {
    const apiError = toApiError(err);
    const reason = apiError instanceof ApiError ? apiError.code : 'INTERNAL';
    this.failedProposals.set(reason, (this.failedProposals.get(reason) ?? 0) + 1);
    return apiError;
  }
}

interface ReadIndexBatch {
  readonly waiting: { resolve: (index: number) => void; reject: (err: unknown) => void; deadline: number }[];
  isAsking: boolean;
}

function notReady(reason: string): ApiError {
  return new ApiError('NOT_READY', reason);
}

function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  return boundedBy(p, deadline, () => new ProposalDroppedError(`${what} did not complete within the request's deadline`, 'unknown'));
}

