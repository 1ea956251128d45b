// Membership and leadership over HTTP (thesis §3.10, §4.3): add a member (always as a learner
// first, so a cold server cannot stall commits, then promoted once caught up), promote, remove
// (the leader hands off first when it is the one leaving), and transfer leadership.
import { ChangeInProgressError, InvalidConfigChangeError, NotLeaderError, ProposalDroppedError, RaftError, isVoter, type ConfigChange, type NodeId } from '../raft/index.js';
import type { RaftNode } from '../node/index.js';
import { ApiError } from './errors.js';
import { allowParams, errorReply, parseJson, type ForwardedRequest, type ForwardedResponse, type ParsedRequest, type Reply } from './http-api.js';
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
}

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const ADDR_PATTERN = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

export function membershipRoutes<R>(options: MembershipOptions<R>): (r: ParsedRequest) => Promise<Reply> | null {
  const { node } = options;
  return (r) => {
    if (r.path === '/v1/members' && r.method === 'POST') return guarded(() => addMember(options, r));
    const m = /^\/v1\/members\/([^/]+)(\/promote)?$/.exec(r.path);
    if (m !== null) {
      const id = decodeURIComponent(m[1]!);
      if (m[2] !== undefined && r.method === 'POST') return guarded(() => change(options, r, [{ type: 'promote', id }]));
      if (m[2] === undefined && r.method === 'DELETE') return guarded(() => removeMember(options, r, id));
      return Promise.resolve(errorReply(new ApiError('METHOD_NOT_ALLOWED', `${r.method} is not allowed on ${r.path}`)));
    }
    if (r.path === '/v1/leader/transfer') {
      if (r.method !== 'POST') return Promise.resolve(errorReply(new ApiError('METHOD_NOT_ALLOWED', 'use POST')));
      return guarded(async () => {
        allowParams(r.query, []);
        const body = r.body.length === 0 ? {} : parseJson(r.body);
        const to = fields(body, ['to']).to;
        if (to !== undefined && (typeof to !== 'string' || !ID_PATTERN.test(to))) throw new ApiError('BAD_REQUEST', '"to" must be a member id');
        const leader = await node.transferLeadership(to ?? null, r.deadline);
        return { status: 200, json: { leader } };
      });
    }
    return null;
  };
}

async function addMember<R>(options: MembershipOptions<R>, r: ParsedRequest): Promise<Reply> {
  allowParams(r.query, []);
  const b = fields(parseJson(r.body), ['id', 'peerAddr', 'clientAddr', 'role']);
  const { id, peerAddr, clientAddr } = b;
  const role = b.role ?? 'voter';
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new ApiError('BAD_REQUEST', '"id" must be 1-64 letters, digits, ".", "_" or "-"');
  if (typeof peerAddr !== 'string' || !ADDR_PATTERN.test(peerAddr)) throw new ApiError('BAD_REQUEST', '"peerAddr" must be HOST:PORT');
  if (typeof clientAddr !== 'string' || !ADDR_PATTERN.test(clientAddr)) throw new ApiError('BAD_REQUEST', '"clientAddr" must be HOST:PORT');
  if (role !== 'voter' && role !== 'learner') throw new ApiError('BAD_REQUEST', '"role" must be "voter" or "learner"');
  const config = options.node.core.config;
  const isMember = config.voters.includes(id) || config.learners.includes(id) || config.votersOutgoing.includes(id);
  // Addresses first, so every node can reach the newcomer as soon as it is in the configuration.
  await options.service.registerAddresses(id, { peerAddr, clientAddr, wantsVoter: role === 'voter' }, r.deadline);
  if (!isMember) await options.node.changeMembership([{ type: 'add-learner', id }], r.deadline);
  return { status: 200, json: { members: options.service.members() } };
}

async function removeMember<R>(options: MembershipOptions<R>, r: ParsedRequest, id: NodeId): Promise<Reply> {
  allowParams(r.query, []);
  const { node } = options;
  if (id === node.id) {
    // The leader is leaving: hand off first, then let the new leader carry out the removal.
    await node.transferLeadership(null, r.deadline);
    const out = await options.forward({ method: 'DELETE', path: `/v1/members/${encodeURIComponent(id)}`, headers: {}, body: new Uint8Array(0) });
    return { status: out.status, bytes: out.body, contentType: out.headers['content-type'] ?? 'application/json' };
  }
  return change(options, r, [{ type: 'remove', id }], async () => options.service.forgetAddresses(id, r.deadline));
}

async function change<R>(options: MembershipOptions<R>, r: ParsedRequest, changes: ConfigChange[], after?: () => Promise<void>): Promise<Reply> {
  if (r.method === 'POST' && r.body.length > 0) fields(parseJson(r.body), []);
  await options.node.changeMembership(changes, r.deadline);
  if (after !== undefined) await after();
  return { status: 200, json: { members: options.service.members() } };
}

/**
 * Thesis §4.2.1: the leader promotes a learner that asked to be a voter once it has caught up
 * (within `promoteLagEntries`), one change at a time.
 */
export function startAutoPromotion<R>(options: MembershipOptions<R>, intervalMs: number): NodeJS.Timeout {
  const lag = options.promoteLagEntries ?? 100;
  let busy = false;
  const timer = setInterval(() => {
    const { node, stateMachine } = options;
    if (busy || !node.isLeader) return;
    const core = node.core;
    for (const id of core.config.learners) {
      if (stateMachine.addresses.get(id)?.wantsVoter !== true || isVoter(core.config, id)) continue;
      const pr = core.progress(id);
      if (pr === undefined || core.lastIndex - pr.matchIndex > lag) continue;
      busy = true;
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

function fields(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('BAD_REQUEST', 'the body must be a JSON object');
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw new ApiError('BAD_REQUEST', `unknown field "${k}"`);
  return body as Record<string, unknown>;
}

async function guarded(f: () => Promise<Reply>): Promise<Reply> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof ChangeInProgressError) throw new ApiError('CHANGE_IN_PROGRESS', err.message);
    if (err instanceof InvalidConfigChangeError) throw new ApiError('BAD_REQUEST', err.message);
    if (err instanceof NotLeaderError) throw new ApiError('NO_LEADER', err.message);
    if (err instanceof ProposalDroppedError) {
      throw /outcome is unknown/.test(err.message) ? new ApiError('TIMEOUT', err.message) : new ApiError('NO_LEADER', err.message);
    }
    if (err instanceof RaftError && err.code === 'STOPPED') throw new ApiError('STOPPED', err.message);
    throw err;
  }
}
