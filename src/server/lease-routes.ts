// The lease API over HTTP (API.md "Coordination", docs/api.md "Leases"): grant, keepalive,
// time-to-live, listing and revoke. Every request under /v1/leases goes to the leader whole
// (http-util.ts requiresLeader): the leader alone holds the deadlines (leases.ts), and a keepalive
// must be acknowledged by a node that has just confirmed it leads. A follower judges the request
// first (parseLeaseRequest), so it refuses a malformed one as the leader would, leader or none.
import { randomBytes } from 'node:crypto';
import { MAX_LEASE_TTL_SECONDS, type KvResult, type KvStateMachine } from '../kv/index.js';
import type { RaftNode } from '../node/index.js';
import { isPermitted } from './auth.js';
import { ApiError } from './errors.js';
import { replyOrError, allowParams, expectMethod, fields, idempotencyKey, intParam, isLeasePath, parseJson, revisionHeader, type Reply } from './http-util.js';
import type { ParsedRequest } from './api-types.js';
import { encodeChecked, settle, unexpected } from './kv-backend.js';
import { LeaseKeeper, minLeaseTtlSeconds } from './leases.js';
import type { Logger } from './logger.js';
import { Gauge, ReadCounter, type Registry } from './metrics.js';
import type { KvService } from './service.js';

/** What the routes need of the service: proposing a command, and a linearizable read barrier. */
export type LeaseService = Pick<KvService<unknown>, 'write' | 'readBarrier'>;

export interface LeaseRouteOptions {
  readonly service: LeaseService;
  readonly kv: KvStateMachine;
  readonly keeper: LeaseKeeper;
  /** The node's --election-ms: the minimum TTL follows from it (minLeaseTtlSeconds). */
  readonly electionMs: number;
  /** --max-response-bytes: a lease's key list stops before the reply would pass it. */
  readonly maxResponseBytes: number;
  /** Draws a lease id when the client names none. @default 53 random bits, never 0 */
  readonly randomId?: () => number;
}

/** GET /v1/leases lists at most this many per request (`limit`), in id order from `after`. */
export const MAX_LEASE_LIST_LIMIT = 10_000;
const DEFAULT_LEASE_LIST_LIMIT = 1000;

/**
 * A lease request, checked. Everything here is judged from the request alone, so a follower
 * judges it before forwarding it whole (http-api.ts) and answers a malformed one 400 while there
 * is no leader, as the leader would; what needs the store or the deadlines is judged on the leader.
 */
export type LeaseRequest =
  | { readonly op: 'grant'; readonly ttlSeconds: number; readonly id: number | undefined; readonly idempotencyKey: string | undefined }
  | { readonly op: 'list'; readonly limit: number; readonly after: number }
  | { readonly op: 'timeToLive'; readonly id: number; readonly withKeys: boolean }
  | { readonly op: 'keepAlive'; readonly id: number }
  | { readonly op: 'revoke'; readonly id: number; readonly idempotencyKey: string | undefined };

/** Judges a request under /v1/leases (throws its 4xx); null for any other path. */
export function parseLeaseRequest(r: ParsedRequest): LeaseRequest | null {
  if (r.path === '/v1/leases') return r.method === 'POST' ? parseGrant(r) : parseList(r);
  if (!r.path.startsWith('/v1/leases/')) return null;
  const rest = r.path.slice('/v1/leases/'.length).split('/');
  if (rest.length === 1) return r.method === 'DELETE' ? parseRevoke(r, leaseIdParam(rest[0]!)) : parseTimeToLive(r, leaseIdParam(rest[0]!));
  if (rest.length === 2 && rest[1] === 'keepalive') return parseKeepAlive(r, leaseIdParam(rest[0]!));
  throw new ApiError('NOT_FOUND', `no such endpoint: ${r.method} ${r.path.slice(0, 200)}`);
}

export function leaseRoutes(options: LeaseRouteOptions): (r: ParsedRequest) => Promise<Reply> | null {
  return (r) => {
    if (!isLeasePath(r.path)) return null;
    return replyOrError(async () => {
      const req = parseLeaseRequest(r)!;
      switch (req.op) {
        case 'grant':
          return grant(options, r, req);
        case 'list':
          return list(options, req, r.deadline);
        case 'timeToLive':
          return timeToLive(options, r, req.id, req.withKeys);
        case 'keepAlive':
          return { status: 200, json: await options.keeper.keepAlive(req.id, r.deadline) };
        case 'revoke':
          return revoke(options, r, req.id, req.idempotencyKey);
      }
    });
  };
}

/** A lease id in a path: a whole number from 1 to 2^53 − 1, decimal, no sign or leading zero. */
export function leaseIdParam(text: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ApiError('BAD_REQUEST', `a lease id is a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, not ${JSON.stringify(text.slice(0, 40))}`);
  }
  return Number(text);
}

function parseGrant(r: ParsedRequest): LeaseRequest {
  allowParams(r.query, []);
  const body = fields(parseJson(r.body), ['ttlSeconds', 'id']);
  const ttl = body.ttlSeconds;
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_LEASE_TTL_SECONDS) {
    throw new ApiError('BAD_REQUEST', `"ttlSeconds" must be a whole number from 1 to ${MAX_LEASE_TTL_SECONDS}`);
  }
  if (body.id !== undefined && (typeof body.id !== 'number' || !Number.isSafeInteger(body.id) || body.id < 1)) {
    throw new ApiError('BAD_REQUEST', `"id" must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`);
  }
  return { op: 'grant', ttlSeconds: ttl, id: body.id as number | undefined, idempotencyKey: idempotencyKey(r) };
}

function parseList(r: ParsedRequest): LeaseRequest {
  expectMethod(r.method, ['GET']);
  allowParams(r.query, ['limit', 'after']);
  return { op: 'list', limit: intParam(r.query, 'limit', DEFAULT_LEASE_LIST_LIMIT, 1, MAX_LEASE_LIST_LIMIT), after: intParam(r.query, 'after', 0, 0, Number.MAX_SAFE_INTEGER) };
}

function parseTimeToLive(r: ParsedRequest, id: number): LeaseRequest {
  expectMethod(r.method, ['GET']);
  allowParams(r.query, ['keys']);
  const withKeys = r.query.has('keys');
  if (withKeys && !['', 'true'].includes(r.query.get('keys')!)) throw new ApiError('BAD_REQUEST', 'keys takes no value (or "true")');
  return { op: 'timeToLive', id, withKeys };
}

function parseKeepAlive(r: ParsedRequest, id: number): LeaseRequest {
  expectMethod(r.method, ['POST']);
  allowParams(r.query, []);
  // No body, or an empty JSON object (what a client that always sends JSON sends).
  if (r.body.length > 0) fields(parseJson(r.body), []);
  return { op: 'keepAlive', id };
}

function parseRevoke(r: ParsedRequest, id: number): LeaseRequest {
  allowParams(r.query, []);
  return { op: 'revoke', id, idempotencyKey: idempotencyKey(r) };
}

function randomLeaseId(): number {
  // 53 random bits: a collision with another lease is as likely as guessing its id.
  for (;;) {
    const b = randomBytes(8);
    const id = (b.readUInt32BE(0) & 0x1fffff) * 2 ** 32 + b.readUInt32BE(4);
    if (id !== 0) return id;
  }
}

async function grant(o: LeaseRouteOptions, r: ParsedRequest, req: Extract<LeaseRequest, { op: 'grant' }>): Promise<Reply> {
  const id = req.id ?? (o.randomId ?? randomLeaseId)();
  // etcd's rule: no lease shorter than the cluster can keep through an election.
  const ttlSeconds = Math.max(req.ttlSeconds, minLeaseTtlSeconds(o.electionMs));
  const idem = req.idempotencyKey;
  const data = encodeChecked(o.kv, { type: 'leaseGrant', id, ttlSeconds, time: Date.now(), ...(idem !== undefined ? { idempotencyKey: idem } : {}) });
  // A grant grows the store (LEASE_OVERHEAD_BYTES): counted against --quota-bytes like a put.
  const result = settle((await o.service.write(data, true, r.deadline, r.principal?.name)) as KvResult | undefined);
  if (result.type !== 'leaseGrant') throw unexpected(result);
  // Its deadline counts from now, not from the next tick.
  o.keeper.sync();
  return { status: 200, json: { id: result.id, ttlSeconds: result.ttlSeconds }, headers: revisionHeader(result.revision) };
}

async function timeToLive(o: LeaseRouteOptions, r: ParsedRequest, id: number, withKeys: boolean): Promise<Reply> {
  await o.service.readBarrier('linearizable', r.deadline);
  const granted = o.kv.leaseTtlSeconds(id);
  const remaining = o.keeper.remainingMs(id);
  if (granted === null || remaining === null) throw new ApiError('LEASE_NOT_FOUND', `lease ${id} does not exist`);
  const json: Record<string, unknown> = { id, ttlSeconds: Math.ceil(remaining / 1000), remainingMs: remaining, grantedTtlSeconds: granted };
  if (withKeys) {
    // Bounded like a listing: keys stop before the reply would pass --max-response-bytes.
    const keys: string[] = [];
    let bytes = 256;
    let isCut = false;
    for (const key of o.kv.lease(id)?.keys ?? []) {
      bytes += Buffer.byteLength(JSON.stringify(key)) + 1;
      if (bytes > o.maxResponseBytes) {
        isCut = true;
        break;
      }
      keys.push(key);
    }
    json.keys = keys;
    json.more = isCut;
  }
  return { status: 200, json };
}

async function list(o: LeaseRouteOptions, { limit, after }: { limit: number; after: number }, deadline: number): Promise<Reply> {
  await o.service.readBarrier('linearizable', deadline);
  const ids = o.kv.leaseIds();
  // Ids are sorted: the first past `after` by binary search.
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  const leases: { id: number }[] = [];
  let bytes = 64;
  let i = lo;
  for (; i < ids.length && leases.length < limit; i++) {
    bytes += 27; // {"id":9007199254740991}, at most
    if (bytes > o.maxResponseBytes) break;
    leases.push({ id: ids[i]! });
  }
  return { status: 200, json: { leases, more: i < ids.length } };
}

async function revoke(o: LeaseRouteOptions, r: ParsedRequest, id: number, idem: string | undefined): Promise<Reply> {
  await o.service.readBarrier('linearizable', r.deadline);
  const lease = o.kv.lease(id);
  // A retried revoke (same Idempotency-Key) may find the lease gone by its first attempt: the log
  // answers it with that attempt's result.
  if (lease === null && idem === undefined) throw new ApiError('LEASE_NOT_FOUND', `lease ${id} does not exist`);
  // A revoke deletes the lease's keys: it needs write access to each, as a delete of it would.
  if (r.principal !== null) {
    for (const key of lease?.keys ?? []) {
      if (!isPermitted(r.principal, { type: 'write', key })) {
        throw new ApiError('PERMISSION_DENIED', `${r.principal.name} may not revoke lease ${id}: it may not write its key ${JSON.stringify(key.slice(0, 200))}`);
      }
    }
  }
  const data = encodeChecked(o.kv, { type: 'leaseRevoke', id, time: Date.now(), ...(idem !== undefined ? { idempotencyKey: idem } : {}) });
  const result = settle((await o.service.write(data, false, r.deadline, r.principal?.name)) as KvResult | undefined);
  if (result.type !== 'leaseRevoke') throw unexpected(result);
  return { status: 200, json: { index: result.index, revision: result.revision, deleted: result.deleted }, headers: revisionHeader(result.revision) };
}

export interface LeaseSetupOptions {
  readonly node: RaftNode<unknown>;
  readonly service: LeaseService;
  readonly kv: KvStateMachine;
  readonly registry: Registry;
  readonly electionMs: number;
  readonly maxResponseBytes: number;
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
}

/**
 * The node's leases: a LeaseKeeper over the node and the store (running on every node, deciding
 * only while it leads), its metrics, and the routes. Returns the routes and the keeper's timer.
 */
export function setUpLeases(o: LeaseSetupOptions): { routes: (r: ParsedRequest) => Promise<Reply> | null; timer: NodeJS.Timeout; keeper: LeaseKeeper } {
  const { node, service, kv } = o;
  const keeper = new LeaseKeeper({
    // Read twice per keep-alive: the getters, not status() (which builds and copies a whole view).
    leadership: () => ({ isLeader: node.isLeader, term: node.currentTerm, hasCommittedInTerm: node.hasCommittedInTerm }),
    // The leader lease (thesis §6.4.1, as `consistency=lease` reads): while a quorum has heard from
    // this leader within an election timeout, its voters refuse any other candidate, so no other
    // leader exists and no renewal it acknowledges can be undone by one; past the lease it asks a
    // quorum (a ReadIndex round). Measured: 17.5k -> 34k keep-alives/s through the leader, server
    // CPU 72 -> 28 µs each (etcd 34k, 29 µs), docs/benchmarks.md. Safe under the same bound on
    // clock drift as lease reads.
    confirmLeadership: (deadline) => service.readBarrier('lease', deadline),
    leases: kv,
    // The keeper proposes only right after it saw this node lead (sync), and the service proposes
    // on the leader itself, so an expiry is never forwarded to another node.
    propose: async (cmd, deadline) => {
      if (!node.isLeader) throw new ApiError('NO_LEADER', 'no longer the leader: expiry is not for this node to decide');
      return (await service.write(encodeChecked(kv, cmd), false, deadline)) as KvResult | undefined;
    },
    proposalTimeoutMs: o.requestTimeoutMs,
    logger: o.logger,
  });
  o.registry.register(new Gauge('raftkv_leases', 'Leases in the store', () => kv.leaseCount));
  o.registry.register(new ReadCounter('raftkv_leases_expired_total', 'Leases this node expired as leader (its revoke committed)', () => keeper.stats.expired));
  o.registry.register(new ReadCounter('raftkv_lease_keepalives_total', 'Keepalives this node acknowledged as leader', () => keeper.stats.keepalives));
  const routes = leaseRoutes({ service, kv, keeper, electionMs: o.electionMs, maxResponseBytes: o.maxResponseBytes });
  return { routes, timer: keeper.start(), keeper };
}
