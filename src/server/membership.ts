// Membership and leadership over HTTP (thesis §3.10, §4.3): add a member (always as a learner
// first, so a cold server cannot stall commits, then promoted once caught up), promote, remove
// (the leader hands off first when it is the one leaving), and transfer leadership.
import { ChangeInProgressError, ProposalDroppedError, isVoter, type ConfigChange, type NodeId } from '../raft/index.js';
import type { RaftNode } from '../node/index.js';
import { ApiError, toApiError } from './errors.js';
import { ID_PATTERN, isAddress } from './address.js';
import type { ConfigurationView, ForwardedRequest, ForwardedResponse, ParsedRequest } from './api-types.js';
import { allowParams, errorReply, fields, parseJson, type Reply } from './http-util.js';
import type { ServiceStateMachine } from './member-registry.js';
import type { KvService } from './service.js';

export interface MembershipOptions<R> {
  readonly node: RaftNode<R | undefined>;
  readonly service: KvService<R>;
  readonly stateMachine: ServiceStateMachine<R>;
  /** Sends a request on to the (new) leader; used when the leader removes itself. */
  readonly forward: (req: ForwardedRequest) => Promise<ForwardedResponse>;
  /** A learner within this many entries of the leader's log counts as caught up. @default 100 */
  readonly promoteLagEntries?: number;
  /** How often a leader that is removing itself checks whether another leader took over. @default 20 */
  readonly handOffPollMs?: number;
}


/**
 * A membership or leadership request, checked. Everything here is judged from the request alone,
 * so a follower judges it before forwarding it whole (http-api.ts) and answers a malformed one
 * 400 while there is no leader, as the leader would.
 */
export type MembershipRequest =
  | { readonly op: 'add'; readonly id: NodeId; readonly peerAddr: string; readonly clientAddr: string; readonly role: 'voter' | 'learner' }
  | { readonly op: 'configuration' }
  | { readonly op: 'promote'; readonly id: NodeId }
  | { readonly op: 'remove'; readonly id: NodeId }
  | { readonly op: 'transfer'; readonly to: NodeId | null };

/** Judges a request this module serves (throws its 4xx); null for any other. */
export function parseMembershipRequest(r: ParsedRequest): MembershipRequest | null {
  if (r.path === '/v1/members' && r.method === 'POST') return parseAdd(r);
  if (r.path === '/v1/configuration') {
    if (r.method !== 'GET') throw new ApiError('METHOD_NOT_ALLOWED', 'use GET');
    allowParams(r.query, []);
    return { op: 'configuration' };
  }
  const m = /^\/v1\/members\/([^/]+)(\/promote)?$/.exec(r.path);
  if (m !== null) {
    const id = memberId(m[1]!);
    if (id === null) throw new ApiError('BAD_REQUEST', 'a member id is 1-64 letters, digits, ".", "_" or "-"');
    if (m[2] !== undefined && r.method === 'POST') {
      allowParams(r.query, []);
      if (r.body.length > 0) fields(parseJson(r.body), []);
      return { op: 'promote', id };
    }
    if (m[2] === undefined && r.method === 'DELETE') {
      allowParams(r.query, []);
      return { op: 'remove', id };
    }
    throw new ApiError('METHOD_NOT_ALLOWED', `${r.method} is not allowed on ${r.path}`);
  }
  if (r.path === '/v1/leader/transfer') {
    if (r.method !== 'POST') throw new ApiError('METHOD_NOT_ALLOWED', 'use POST');
    allowParams(r.query, []);
    const body = r.body.length === 0 ? {} : parseJson(r.body);
    const to = fields(body, ['to']).to;
    if (to !== undefined && (typeof to !== 'string' || !ID_PATTERN.test(to))) throw new ApiError('BAD_REQUEST', '"to" must be a member id');
    return { op: 'transfer', to: to ?? null };
  }
  return null;
}

function parseAdd(r: ParsedRequest): MembershipRequest {
  allowParams(r.query, []);
  const b = fields(parseJson(r.body), ['id', 'peerAddr', 'clientAddr', 'role']);
  const { id, peerAddr, clientAddr } = b;
  const role = b.role ?? 'voter';
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new ApiError('BAD_REQUEST', '"id" must be 1-64 letters, digits, ".", "_" or "-"');
  if (!isAddress(peerAddr)) throw new ApiError('BAD_REQUEST', '"peerAddr" must be HOST:PORT');
  if (!isAddress(clientAddr)) throw new ApiError('BAD_REQUEST', '"clientAddr" must be HOST:PORT');
  if (role !== 'voter' && role !== 'learner') throw new ApiError('BAD_REQUEST', '"role" must be "voter" or "learner"');
  return { op: 'add', id, peerAddr, clientAddr, role };
}

export function membershipRoutes<R>(options: MembershipOptions<R>): (r: ParsedRequest) => Promise<Reply> | null {
  return (r) => {
    let req: MembershipRequest | null;
    try {
      req = parseMembershipRequest(r);
    } catch (err) {
      return Promise.resolve(errorReply(err));
    }
    return req === null ? null : guarded(() => serve(options, r, req));
  };
}

async function serve<R>(options: MembershipOptions<R>, r: ParsedRequest, req: MembershipRequest): Promise<Reply> {
  switch (req.op) {
    case 'add':
      return addMember(options, r, req);
    case 'configuration':
      return { status: 200, json: configurationView(options) };
    case 'promote':
      return change(options, r, [{ type: 'promote', id: req.id }]);
    case 'remove':
      return removeMember(options, r, req.id);
    case 'transfer': {
      const { node } = options;
      // Only a voter can lead (thesis §4.2.1): naming anything else is the caller's mistake, not a missing leader.
      if (req.to !== null && node.isLeader && !isVoter(node.config, req.to)) throw new ApiError('BAD_REQUEST', `${req.to} is not a voter of this cluster`);
      return { status: 200, json: { leader: await transfer(options, req.to, r.deadline) } };
    }
  }
}

async function addMember<R>(options: MembershipOptions<R>, r: ParsedRequest, { id, peerAddr, clientAddr, role }: Extract<MembershipRequest, { op: 'add' }>): Promise<Reply> {
  // A joiner presents the cluster id in its handshakes: it cannot join before the cluster has one.
  const clusterId = options.service.clusterId();
  if (clusterId === null) throw new ApiError('NO_LEADER', 'the cluster has not committed its id yet; retry shortly');
  const config = options.node.config;
  const isMember = config.voters.includes(id) || config.learners.includes(id) || config.votersOutgoing.includes(id);
  // Addresses first, so every node can reach the newcomer as soon as it is in the configuration.
  await options.service.registerAddresses(id, { peerAddr, clientAddr, wantsVoter: role === 'voter' }, r.deadline);
  if (!isMember) await options.node.changeMembership([{ type: 'add-learner', id }], r.deadline);
  return { status: 200, json: { members: options.service.members(), clusterId } };
}

async function removeMember<R>(options: MembershipOptions<R>, r: ParsedRequest, id: NodeId): Promise<Reply> {
  const { node } = options;
  if (id === node.id) {
    // The leader is leaving: hand off first, then let the new leader carry out the removal.
    // Not in the middle of another change: its next configuration entry would be appended after
    // the transfer target's log was judged up to date, and the target would lose its election.
    if (node.status().isChangePending) throw new ChangeInProgressError();
    await handOff(options, r.deadline);
    const out = await forwardUntilAnswered(options, { method: 'DELETE', path: `/v1/members/${encodeURIComponent(id)}`, headers: {}, body: new Uint8Array(0) }, r.deadline);
    return { status: out.status, bytes: out.body, contentType: out.headers['content-type'] ?? 'application/json' };
  }
  return change(options, r, [{ type: 'remove', id }], async () => options.service.forgetAddresses(id, r.deadline));
}

/**
 * Thesis §3.10 for a leader about to remove itself: any other leader will do, not only the one
 * the transfer picked. A transfer can fail (the target loses its election, or another voter wins
 * it), so keep asking until some other server leads, or the deadline passes.
 */
async function handOff<R>(options: MembershipOptions<R>, deadline: number): Promise<void> {
  const { node } = options;
  const pollMs = options.handOffPollMs ?? 20;
  const someoneElseLeads = (): boolean => !node.isLeader && node.leaderId !== null && node.leaderId !== node.id;
  while (!someoneElseLeads()) {
    if (Date.now() >= deadline) throw new ApiError('NO_LEADER', `no other server took over leadership from ${node.id} within the request's deadline; ${node.id} is still a member`);
    if (node.isLeader && node.status().leadTransferee === null) {
      // The transfer's own promise settles only when its target leads; another winner is watched
      // for below. Its failure (the target did not win in time) just means: try again.
      node.transferLeadership(null, deadline).catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * Thesis §3.10. RaftNode's transfer settles when its target leads, or fails when this node resumes
 * leading; if a third server wins the election instead, it would wait out the whole deadline and
 * answer "outcome unknown". Watch for that here: with no target named any new leader will do;
 * with one, say at once who leads instead (a retry moves it on).
 */
async function transfer<R>(options: MembershipOptions<R>, to: NodeId | null, deadline: number): Promise<NodeId> {
  const { node } = options;
  try {
    return await node.transferLeadership(to, deadline);
  } catch (err) {
    if (!(err instanceof ProposalDroppedError) || err.outcome === 'unknown') throw err;
    // RaftNode rejects as soon as a server other than the target wins the election it caused.
    const winner = node.leaderId;
    if (!node.isLeader && winner !== null && winner !== node.id) {
      if (to === null) return winner;
      throw new ApiError('TRANSFER_FAILED', `${winner} won the election instead of ${to}; retry to move leadership on`, { details: { leader: winner } });
    }
    // The target did not take over (or there is none): this node still leads.
    throw new ApiError('TRANSFER_FAILED', err.message, { details: { leader: node.leaderId } });
  }
}

/** Forwards to the leader, retrying while there is none yet or it cannot take a change yet (503). */
async function forwardUntilAnswered<R>(options: MembershipOptions<R>, req: ForwardedRequest, deadline: number): Promise<ForwardedResponse> {
  for (;;) {
    let out: ForwardedResponse | null = null;
    try {
      out = await options.forward({ ...req, headers: { ...req.headers, 'request-timeout': String(Math.max(1, deadline - Date.now())) } });
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'NO_LEADER') throw err;
    }
    if (out !== null && out.status !== 503) return out;
    if (Date.now() + 50 >= deadline) {
      if (out !== null) return out;
      throw new ApiError('NO_LEADER', 'no leader answered the removal; retry');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** This node's own view of the configuration: which servers vote, and whether a change is under way. */
function configurationView<R>(options: MembershipOptions<R>): ConfigurationView {
  const s = options.node.status();
  return {
    id: options.node.id,
    term: s.currentTerm,
    voters: s.config.voters,
    votersOutgoing: s.config.votersOutgoing,
    learners: s.config.learners,
    joint: s.isJoint,
    configIndex: s.configIndex,
    pending: s.isChangePending,
  };
}

async function change<R>(options: MembershipOptions<R>, r: ParsedRequest, changes: ConfigChange[], after?: () => Promise<void>): Promise<Reply> {
  await options.node.changeMembership(changes, r.deadline);
  if (after !== undefined) {
    // The change is done and must be answered as done: a retry of a finished removal would fail
    // ("not a member"). Tidying up after it (a removed member's addresses) may fail if this node
    // lost leadership meanwhile; a stale record of a non-member is never used for routing.
    await after().catch(() => undefined);
  }
  return { status: 200, json: { members: options.service.members() } };
}

/**
 * Thesis §4.2.1: the leader promotes a learner that asked to be a voter once it has caught up,
 * one change at a time. Caught up means all of: it has acknowledged this leader's log up to the
 * commit index this leader saw when it first found the learner waiting (so at least the entry
 * that added it: a server that never ran cannot pass, however young the log); it is within
 * `promoteLagEntries` of the leader's log; and it was heard from within an election timeout (a
 * learner that acknowledged once and died is not promoted into a voter the quorum then needs).
 */
export function startAutoPromotion<R>(options: MembershipOptions<R>, intervalMs: number, electionMs: number, lastHeardMs: (id: NodeId) => number | undefined): NodeJS.Timeout {
  const lag = options.promoteLagEntries ?? 100;
  const targets = new Map<NodeId, { term: number; index: number }>();
  let busy = false;
  const timer = setInterval(() => {
    const { node, stateMachine } = options;
    if (!node.isLeader) {
      targets.clear();
      return;
    }
    if (busy) return;
    const status = node.status();
    for (const id of status.config.learners) {
      if (stateMachine.addresses.get(id)?.wantsVoter !== true || isVoter(status.config, id)) continue;
      let target = targets.get(id);
      if (target === undefined || target.term !== status.currentTerm) {
        target = { term: status.currentTerm, index: status.commitIndex };
        targets.set(id, target);
      }
      const pr = node.progress(id);
      if (pr === undefined || pr.matchIndex < target.index || status.lastIndex - pr.matchIndex > lag) continue;
      const heard = lastHeardMs(id);
      if (heard === undefined || Date.now() - heard > electionMs) continue;
      busy = true;
      targets.delete(id);
      node
        .changeMembership([{ type: 'promote', id }], Date.now() + 10_000)
        .catch(() => undefined)
        .finally(() => (busy = false));
      return;
    }
  }, intervalMs);
  timer.unref();
  return timer;
}

/** A member id from a path segment, or null when it is not one (bad percent-encoding included). */
function memberId(segment: string): string | null {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return ID_PATTERN.test(id) ? id : null;
}

async function guarded(f: () => Promise<Reply>): Promise<Reply> {
  try {
    return await f();
  } catch (err) {
    throw toApiError(err);
  }
}
