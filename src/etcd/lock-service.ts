// etcd's v3lock and v3election services over raftkv's locks and elections (src/server/locks.ts:
// etcd's key layout NAME/LEASE-HEX attached to the lease, the lowest create revision first, the
// create revision as the fencing token). Lock and Campaign wait until first in line for as long as
// the call lasts: until its gRPC deadline, or, without one, until the client cancels; an attempt
// given up on is withdrawn, as etcd's clients do. Observe streams the leader whenever it or its
// value changes, keeping only the latest for a slow reader.
import type { ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { Principal } from '../server/auth.js';
import { ApiError } from '../server/errors.js';
import { lineHubOf } from '../server/lock-lines.js';
import { contend, lineLeader, proclaimValue, releaseKey, type Contender } from '../server/locks.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { ETCD_ERRORS, EtcdError, toServiceError } from './errors.js';
import { unary, type CallInfo } from './handlers.js';
import { int64, keyText, type KeyValue } from './wire.js';
import type { Action } from '../server/auth.js';

interface LeaderKey {
  name: Buffer;
  key: Buffer;
  rev: string | number;
  lease: string | number;
}

function nameOf(bytes: Buffer, ctx: EtcdContext): string {
  if (bytes.length === 0) throw new EtcdError(status.INVALID_ARGUMENT, 'raftkv: the name is empty');
  const name = keyText(bytes, 'name');
  // Room for "/" and a lease id in hex under the key limit.
  if (bytes.length + 15 > ctx.parts.cfg.maxKeyBytes) throw ETCD_ERRORS.requestTooLarge();
  return name;
}

/** A contender's rights: read the line under NAME/, write its own key there (as the HTTP API asks). */
function contendActions(name: string): Action[] {
  return [{ type: 'read-range', prefix: `${name}/` }, { type: 'write', key: `${name}/` }];
}

function kvOf(c: Contender): KeyValue {
  // The contender's record as the store has it (create revision is the place in line).
  return { key: Buffer.from(c.key), create_revision: c.revision, mod_revision: c.modRevision, version: c.version, value: Buffer.from(c.value), lease: c.lease };
}

/**
 * Lock and Campaign: wait for the whole call. Not the unary wrapper's deadline (capped at
 * --request-timeout-ms): a lock may be waited for as long as the client wants.
 */
function waiting<Req, Res>(ctx: EtcdContext, handle: (req: Req, principal: Principal | null, waitDeadline: number, signal: AbortSignal) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort());
    let principal: Principal | null;
    try {
      principal = ctx.principal(call.metadata);
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    // Waiting calls are capped as the node's watches are (each costs a place in its line hub).
    if (ctx.waiting >= ctx.limits.maxWatchers) {
      callback(toServiceError(ETCD_ERRORS.tooManyRequests()));
      return;
    }
    const d = call.getDeadline();
    const at = d instanceof Date ? d.getTime() : d;
    const waitDeadline = Number.isFinite(at) ? at : Number.POSITIVE_INFINITY;
    ctx.waiting++;
    handle(call.request, principal, waitDeadline, abort.signal)
      .finally(() => ctx.waiting--)
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err)),
      );
  };
}

async function take(ctx: EtcdContext, kind: 'lock' | 'election', nameBytes: Buffer, leaseText: string | number, value: Uint8Array, principal: Principal | null, waitDeadline: number, signal: AbortSignal): Promise<Contender> {
  const name = nameOf(nameBytes, ctx);
  const lease = int64(leaseText, 'lease', 0);
  // etcd's lock and election services pass their session's error on without a status of their own,
  // so a missing lease is UNKNOWN there (KV and Lease answer NOT_FOUND); clients match the message.
  if (lease === 0) throw ETCD_ERRORS.sessionLeaseNotFound();
  ctx.authorize(principal, contendActions(name));
  const writeDeadline = Math.min(waitDeadline, Date.now() + ctx.requestTimeoutMs);
  try {
    return await contend({ service: ctx.parts.service, kv: ctx.parts.kv }, { name, lease, value, kind, writeDeadline, waitDeadline, principal: principal?.name, signal });
  } catch (err) {
    if (err instanceof ApiError && err.code === 'LOCK_HELD') throw new EtcdError(signal.aborted ? status.CANCELLED : status.DEADLINE_EXCEEDED, 'context deadline exceeded');
    if (err instanceof ApiError && err.code === 'LEASE_NOT_FOUND') throw ETCD_ERRORS.sessionLeaseNotFound();
    throw err;
  }
}

export function lockService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    Lock: waiting(ctx, async (req: { name: Buffer; lease: string | number }, principal, waitDeadline, signal) => {
      const me = await take(ctx, 'lock', req.name, req.lease, new Uint8Array(0), principal, waitDeadline, signal);
      return { header: ctx.header(), key: Buffer.from(me.key) };
    }),
    Unlock: unary(ctx, async (req: { key: Buffer }, call: CallInfo) => {
      if (req.key.length === 0) throw ETCD_ERRORS.emptyKey();
      const key = keyText(req.key);
      ctx.authorize(call.principal, [{ type: 'write', key }]);
      const { revision } = await releaseKey({ service: ctx.parts.service, kv: ctx.parts.kv }, key, null, call.deadline, call.principal?.name);
      return { header: ctx.header(revision) };
    }),
  };
}

function leaderKeyOf(l: LeaderKey | null | undefined, ctx: EtcdContext): { name: string; key: string; rev: number } {
  if (l === null || l === undefined) throw new EtcdError(status.INVALID_ARGUMENT, '"leader" field must be provided');
  const name = nameOf(l.name, ctx);
  if (l.key.length === 0) throw ETCD_ERRORS.emptyKey();
  return { name, key: keyText(l.key), rev: int64(l.rev, 'rev', 0) };
}

export function electionService(ctx: EtcdContext): UntypedServiceImplementation {
  const options = { service: ctx.parts.service, kv: ctx.parts.kv };
  let observers = 0;
  return {
    Campaign: waiting(ctx, async (req: { name: Buffer; lease: string | number; value: Buffer }, principal, waitDeadline, signal) => {
      const me = await take(ctx, 'election', req.name, req.lease, req.value, principal, waitDeadline, signal);
      return { header: ctx.header(), leader: { name: req.name, key: Buffer.from(me.key), rev: me.revision, lease: me.lease } };
    }),
    Proclaim: unary(ctx, async (req: { leader: LeaderKey | null; value: Buffer }, call: CallInfo) => {
      const l = leaderKeyOf(req.leader, ctx);
      ctx.authorize(call.principal, [{ type: 'write', key: l.key }, { type: 'read-range', prefix: `${l.name}/` }]);
      try {
        const revision = await proclaimValue(options, l.name, l.key, l.rev, req.value, call.deadline, call.principal?.name);
        return { header: ctx.header(revision) };
      } catch (err) {
        if (err instanceof ApiError && err.code === 'LOCK_HELD') throw ETCD_ERRORS.electionNotLeader();
        throw err;
      }
    }),
    Resign: unary(ctx, async (req: { leader: LeaderKey | null }, call: CallInfo) => {
      const l = leaderKeyOf(req.leader, ctx);
      ctx.authorize(call.principal, [{ type: 'write', key: l.key }]);
      const { revision } = await releaseKey(options, l.key, l.rev, call.deadline, call.principal?.name);
      return { header: ctx.header(revision) };
    }),
    Leader: unary(ctx, async (req: { name: Buffer }, call: CallInfo) => {
      const name = nameOf(req.name, ctx);
      ctx.authorize(call.principal, [{ type: 'read-range', prefix: `${name}/` }]);
      await ctx.parts.service.readBarrier('linearizable', call.deadline);
      const leader = lineLeader(ctx.parts.kv, name);
      if (leader === undefined) throw ETCD_ERRORS.electionNoLeader();
      return { header: ctx.header(), kv: kvOf(leader) };
    }),
    Observe: (call: ServerWritableStream<{ name: Buffer }, { header: ResponseHeader; kv: KeyValue }>) => {
      let name: string;
      try {
        name = nameOf(call.request.name, ctx);
        ctx.authorize(ctx.principal(call.metadata), [{ type: 'read-range', prefix: `${name}/` }]);
        if (observers >= ctx.limits.maxWatchers) throw ETCD_ERRORS.tooManyRequests();
      } catch (err) {
        call.emit('error', toServiceError(err));
        return;
      }
      observers++;
      const kv = ctx.parts.kv;
      let last = '';
      let isBlocked = false;
      let isOpen = true;
      const send = (leader: Contender | undefined = lineLeader(kv, name)): void => {
        if (!isOpen || isBlocked) return;
        if (leader === undefined) return;
        const text = `${leader.key}\0${leader.revision}\0${leader.modRevision}`;
        if (text === last) return;
        last = text;
        isBlocked = !call.write({ header: ctx.header(), kv: kvOf(leader) });
      };
      // One store listener for every observer and waiter of the node (lock-lines.ts), told after apply.
      const unsubscribe = lineHubOf(kv).observe(name, (leader) => send(leader));
      const close = (): void => {
        if (!isOpen) return;
        isOpen = false;
        observers--;
        unsubscribe();
      };
      call.on('drain', () => {
        isBlocked = false;
        send();
      });
      call.on('cancelled', close);
      call.on('close', close);
      call.on('error', close);
      send();
    },
  };
}
