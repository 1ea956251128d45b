// etcd's Lease service over raftkv's leases (src/kv/ state, src/server/leases.ts keeper): grants
// and revokes go through the log like any write (a follower forwards them as proposals); a
// keep-alive and a time-to-live need the leader's deadlines, so the leader answers them from its
// keeper and a follower asks the leader over the peer channel (the HTTP API's lease routes, with
// the caller's principal), as the HTTP API forwards them. etcd's answers where clients act on them:
// a keep-alive of a lease that is gone answers TTL 0, a time-to-live TTL -1.
import { randomBytes } from 'node:crypto';
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { MAX_LEASE_TTL_SECONDS, type KvResult } from '../kv/index.js';
import { isPermitted, type Principal } from '../server/auth.js';
import { ApiError } from '../server/errors.js';
import { encodeChecked, settle, unexpected } from '../server/kv-backend.js';
import { minLeaseTtlSeconds } from '../server/leases.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { ETCD_ERRORS, toServiceError } from './errors.js';
import { unary, type CallInfo } from './handlers.js';
import { mapKvError } from './range.js';
import { int64 } from './wire.js';

/** Keep-alives of one stream waiting for an answer at most; more are dropped unanswered (the client sends again). */
const MAX_KEEPALIVES_IN_FLIGHT = 64;
const decoder = new TextDecoder();

export function leaseService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    LeaseGrant: unary(ctx, (req: { TTL: string | number; ID: string | number }, call) => grant(ctx, req, call)),
    LeaseRevoke: unary(ctx, (req: { ID: string | number }, call) => revoke(ctx, req, call)),
    LeaseTimeToLive: unary(ctx, (req: { ID: string | number; keys: boolean }, call) => timeToLive(ctx, req, call)),
    LeaseLeases: unary(ctx, (_req: unknown, call) => leases(ctx, call)),
    LeaseKeepAlive: (stream: ServerDuplexStream<{ ID: string | number }, { header: ResponseHeader; ID: number; TTL: number }>) => keepAliveStream(ctx, stream),
  };
}

function randomLeaseId(): number {
  for (;;) {
    const b = randomBytes(8);
    const id = (b.readUInt32BE(0) & 0x1fffff) * 2 ** 32 + b.readUInt32BE(4);
    if (id !== 0) return id;
  }
}

async function grant(ctx: EtcdContext, req: { TTL: string | number; ID: string | number }, call: CallInfo): Promise<{ header: ResponseHeader; ID: number; TTL: number; error: string }> {
  ctx.authorize(call.principal, [{ type: 'lease' }]);
  const ttl = int64(req.TTL, 'TTL');
  if (ttl > MAX_LEASE_TTL_SECONDS) throw ETCD_ERRORS.leaseTtlTooLarge();
  const asked = int64(req.ID, 'ID', 0);
  const id = asked === 0 ? randomLeaseId() : asked;
  // etcd's rule: no lease shorter than the cluster can keep through an election.
  const ttlSeconds = Math.max(ttl, minLeaseTtlSeconds(ctx.parts.cfg.electionMs));
  const { kv, service } = ctx.parts;
  let data: Uint8Array;
  try {
    data = encodeChecked(kv, { type: 'leaseGrant', id, ttlSeconds, time: Date.now() });
  } catch (err) {
    throw mapKvError(err);
  }
  const result = settle((await service.write(data, true, call.deadline, call.principal?.name)) as KvResult | undefined);
  if (result.type !== 'leaseGrant') throw unexpected(result);
  if (ctx.parts.node.isLeader) ctx.parts.leases.sync();
  return { header: ctx.header(result.revision), ID: result.id, TTL: result.ttlSeconds, error: '' };
}

async function revoke(ctx: EtcdContext, req: { ID: string | number }, call: CallInfo): Promise<{ header: ResponseHeader }> {
  ctx.authorize(call.principal, [{ type: 'lease' }]);
  const id = int64(req.ID, 'ID', 1);
  const { kv, service } = ctx.parts;
  await service.readBarrier('linearizable', call.deadline);
  const lease = kv.lease(id);
  if (lease === null) throw ETCD_ERRORS.leaseNotFound();
  // A revoke deletes the lease's keys: it needs write access to each, as a delete of it would.
  if (call.principal !== null) for (const key of lease.keys) if (!isPermitted(call.principal, { type: 'write', key })) throw ETCD_ERRORS.permissionDenied();
  const data = encodeChecked(kv, { type: 'leaseRevoke', id, time: Date.now() });
  const result = settle((await service.write(data, false, call.deadline, call.principal?.name)) as KvResult | undefined);
  if (result.type !== 'leaseRevoke') throw unexpected(result);
  return { header: ctx.header(result.revision) };
}

/** Asks the leader's lease routes (a follower) and parses the JSON answer; ApiError for an error status. */
async function askLeader(ctx: EtcdContext, method: string, path: string, principal: Principal | null, deadline: number): Promise<{ status: number; json: Record<string, unknown> }> {
  const answer = await ctx.parts.forward({ method, path, headers: { 'request-timeout': String(Math.max(1, deadline - Date.now())) }, body: new Uint8Array(0), ...(principal !== null ? { principal: principal.name } : {}) });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(decoder.decode(answer.body)) as Record<string, unknown>;
  } catch {
    // An empty or non-JSON body: the status says enough.
  }
  if (answer.status >= 400 && answer.status !== 404) {
    const err = json['error'] as { code?: string; message?: string } | undefined;
    if (answer.status === 503) throw ETCD_ERRORS.noLeader();
    if (answer.status === 504) throw ETCD_ERRORS.timeout();
    if (answer.status === 401) throw ETCD_ERRORS.invalidAuthToken();
    if (answer.status === 403) throw ETCD_ERRORS.permissionDenied();
    throw new ApiError('INTERNAL', `the leader answered ${answer.status}: ${err?.message ?? ''}`);
  }
  return { status: answer.status, json };
}

async function timeToLive(ctx: EtcdContext, req: { ID: string | number; keys: boolean }, call: CallInfo): Promise<{ header: ResponseHeader; ID: number; TTL: number; grantedTTL: number; keys: Buffer[] }> {
  ctx.authorize(call.principal, [{ type: 'lease' }]);
  const id = int64(req.ID, 'ID', 1);
  const { node, kv, leases, service } = ctx.parts;
  const gone = { header: ctx.header(), ID: id, TTL: -1, grantedTTL: 0, keys: [] };
  let remainingMs: number | null;
  if (node.isLeader) {
    await service.readBarrier('linearizable', call.deadline);
    remainingMs = kv.leaseTtlSeconds(id) === null ? null : leases.remainingMs(id);
  } else {
    const answer = await askLeader(ctx, 'GET', `/v1/leases/${id}`, call.principal, call.deadline);
    remainingMs = answer.status === 404 ? null : Number(answer.json['remainingMs']);
    // Read this node's state at least as new as the leader's answer, for the granted TTL and keys.
    await service.readBarrier('linearizable', call.deadline);
  }
  const granted = kv.leaseTtlSeconds(id);
  if (remainingMs === null || !Number.isFinite(remainingMs) || granted === null) return gone;
  const keys: Buffer[] = [];
  if (req.keys === true) {
    let bytes = 0;
    for (const key of kv.lease(id)?.keys ?? []) {
      const k = Buffer.from(key);
      bytes += k.length + 8;
      if (bytes > ctx.parts.cfg.maxResponseBytes) break;
      keys.push(k);
    }
  }
  return { header: ctx.header(), ID: id, TTL: Math.ceil(remainingMs / 1000), grantedTTL: granted, keys };
}

async function leases(ctx: EtcdContext, call: CallInfo): Promise<{ header: ResponseHeader; leases: { ID: number }[] }> {
  ctx.authorize(call.principal, [{ type: 'lease' }]);
  await ctx.parts.service.readBarrier('linearizable', call.deadline);
  const max = Math.floor(ctx.parts.cfg.maxResponseBytes / 16);
  return { header: ctx.header(), leases: ctx.parts.kv.leaseIds().slice(0, max).map((ID) => ({ ID })) };
}

/**
 * One keep-alive stream: each request renews its lease (on the leader, or through it) and is
 * answered with the TTL, 0 when the lease is gone. A stream floods nothing: at most
 * MAX_KEEPALIVES_IN_FLIGHT wait at a time and at most maxKeepAlivesPerSecond are taken per second;
 * the rest are dropped unanswered (etcd's clients send again a third of a TTL later).
 */
function keepAliveStream(ctx: EtcdContext, stream: ServerDuplexStream<{ ID: string | number }, { header: ResponseHeader; ID: number; TTL: number }>): void {
  let principal: Principal | null;
  try {
    principal = ctx.principal(stream.metadata);
    ctx.authorize(principal, [{ type: 'lease' }]);
  } catch (err) {
    stream.emit('error', toServiceError(err));
    return;
  }
  let inFlight = 0;
  let windowStart = Date.now();
  let inWindow = 0;
  let isOpen = true;
  let isPaused = false;
  const closed = (): void => {
    isOpen = false;
  };
  stream.on('end', () => {
    closed();
    stream.end();
  });
  stream.on('cancelled', closed);
  stream.on('close', closed);
  stream.on('error', closed);
  stream.on('data', (req: { ID: string | number }) => {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      inWindow = 0;
    }
    if (inFlight >= MAX_KEEPALIVES_IN_FLIGHT || inWindow >= ctx.limits.maxKeepAlivesPerSecond) return;
    let id: number;
    try {
      id = int64(req.ID, 'ID', 1);
    } catch {
      return;
    }
    inFlight++;
    inWindow++;
    keepAliveOnce(ctx, id, principal).then(
      (ttl) => {
        inFlight--;
        // A client that sends and never reads: stop reading its requests until it takes the
        // answers (HTTP/2 flow control then holds the sender), so they never pile up here.
        if (isOpen && ttl !== null && !stream.write({ header: ctx.header(), ID: id, TTL: ttl }) && !isPaused) {
          isPaused = true;
          stream.pause();
          stream.once('drain', () => {
            isPaused = false;
            stream.resume();
          });
        }
      },
      () => {
        inFlight--;
      },
    );
  });
}

/** The lease's TTL after a renewal, 0 when it is gone, null when no leader could renew it now. */
async function keepAliveOnce(ctx: EtcdContext, id: number, principal: Principal | null): Promise<number | null> {
  const deadline = Date.now() + ctx.requestTimeoutMs;
  const { node, leases } = ctx.parts;
  try {
    if (node.isLeader) return (await leases.keepAlive(id, deadline)).ttlSeconds;
    const answer = await askLeader(ctx, 'POST', `/v1/leases/${id}/keepalive`, principal, deadline);
    if (answer.status === 404) return 0;
    const ttl = Number(answer.json['ttlSeconds']);
    return Number.isFinite(ttl) ? ttl : null;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'LEASE_NOT_FOUND') return 0;
    return null;
  }
}
