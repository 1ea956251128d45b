// Leases in the client (docs/client.md "Leases"): the calls of the lease API, and `keepLease`, which
// holds a lease by renewing it every TTL/3 through whichever node answers, and reports when it is
// lost: the cluster says it is gone, or no renewal was acknowledged within its TTL. The server
// side, and why a lease kept alive survives leader changes, is in src/server/leases.ts.
import { BadRequestError, NotFoundError, RaftKvClientError } from './errors.js';
import type { Answer, RequestSpec } from './http.js';
import { badResponse, json, numberField } from './responses.js';

export interface LeaseGrant {
  readonly id: number;
  /** The TTL granted: what was asked, raised to the cluster's minimum (1.5 election timeouts). */
  readonly ttlSeconds: number;
}

export interface GrantLeaseOptions {
  /** The lease's id (1 to 2^53 − 1); drawn at random by the node when left out. */
  readonly id?: number;
  readonly idempotencyKey?: string;
}

export interface LeaseTimeToLive {
  readonly id: number;
  /** Whole seconds left, rounded up, on the leader's clock. */
  readonly ttlSeconds: number;
  readonly remainingMs: number;
  readonly grantedTtlSeconds: number;
  /** With `keys: true`: the attached keys in key order, up to the server's reply limit. */
  readonly keys?: readonly string[];
  /** Some keys were left out to keep the reply under --max-response-bytes. */
  readonly more?: boolean;
}

export interface LeaseList {
  readonly leases: readonly { readonly id: number }[];
  /** More leases follow: ask again with `after` set to the last id. */
  readonly more: boolean;
}

/** How the lease calls reach the cluster (RaftKvClient's requester). */
export interface LeaseRequester {
  request(spec: RequestSpec): Promise<Answer>;
}

export async function grantLease(requester: LeaseRequester, idempotencyKey: string, ttlSeconds: number, opts: GrantLeaseOptions = {}): Promise<LeaseGrant> {
  const body = JSON.stringify({ ttlSeconds: positiveWhole(ttlSeconds, 'ttlSeconds'), ...(opts.id !== undefined ? { id: positiveWhole(opts.id, 'id') } : {}) });
  const answer = await requester.request({ method: 'POST', path: '/v1/leases', body, contentType: 'application/json', idempotencyKey: opts.idempotencyKey ?? idempotencyKey });
  const b = json(answer);
  return { id: numberField(b, 'id', answer), ttlSeconds: numberField(b, 'ttlSeconds', answer) };
}

/** Renews the lease: its full TTL counts again from now. NotFoundError when it is gone. */
export async function keepAliveLease(requester: LeaseRequester, id: number, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<LeaseGrant> {
  const answer = await requester.request({
    method: 'POST',
    path: `/v1/leases/${positiveWhole(id, 'id')}/keepalive`,
    body: '{}',
    contentType: 'application/json',
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
  const b = json(answer);
  return { id: numberField(b, 'id', answer), ttlSeconds: numberField(b, 'ttlSeconds', answer) };
}

export async function leaseTimeToLive(requester: LeaseRequester, id: number, opts: { keys?: boolean } = {}): Promise<LeaseTimeToLive> {
  const answer = await requester.request({ method: 'GET', path: `/v1/leases/${positiveWhole(id, 'id')}${opts.keys === true ? '?keys' : ''}` });
  const b = json(answer) as { keys?: unknown; more?: unknown };
  const keys = b.keys;
  if (keys !== undefined && (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))) throw badResponse('keys', answer);
  return {
    id: numberField(b, 'id', answer),
    ttlSeconds: numberField(b, 'ttlSeconds', answer),
    remainingMs: numberField(b, 'remainingMs', answer),
    grantedTtlSeconds: numberField(b, 'grantedTtlSeconds', answer),
    ...(keys !== undefined ? { keys: keys as string[], more: b.more === true } : {}),
  };
}

export async function listLeases(requester: LeaseRequester, opts: { after?: number; limit?: number } = {}): Promise<LeaseList> {
  const query = new URLSearchParams();
  if (opts.after !== undefined) query.set('after', String(positiveWhole(opts.after, 'after', 0)));
  if (opts.limit !== undefined) query.set('limit', String(positiveWhole(opts.limit, 'limit')));
  const text = query.toString();
  const answer = await requester.request({ method: 'GET', path: `/v1/leases${text === '' ? '' : `?${text}`}` });
  const b = json(answer) as { leases?: unknown; more?: unknown };
  if (!Array.isArray(b.leases)) throw badResponse('leases', answer);
  return { leases: b.leases.map((l: unknown) => ({ id: numberField(l, 'id', answer) })), more: b.more === true };
}

/** Ends the lease and deletes its keys; NotFoundError when it is already gone. */
export async function revokeLease(requester: LeaseRequester, idempotencyKey: string, id: number): Promise<{ revision: number; deleted: number }> {
  const answer = await requester.request({ method: 'DELETE', path: `/v1/leases/${positiveWhole(id, 'id')}`, idempotencyKey });
  const b = json(answer);
  return { revision: numberField(b, 'revision', answer), deleted: numberField(b, 'deleted', answer) };
}

/** Why a held lease ended: `LEASE_NOT_FOUND` (the cluster expired or revoked it) or `LEASE_NOT_RENEWED` (no renewal within its TTL). */
export class LeaseLostError extends RaftKvClientError {
  readonly leaseId: number;
  constructor(code: 'LEASE_NOT_FOUND' | 'LEASE_NOT_RENEWED', leaseId: number, message: string, cause?: unknown) {
    super(code, message, null, cause !== undefined ? { cause } : {});
    this.leaseId = leaseId;
  }
}

/** A lease held by `keepLease`. */
export interface KeptLease {
  readonly id: number;
  readonly ttlSeconds: number;
  /**
   * Resolves (never rejects) once the lease is lost: from then on its keys may be gone and another
   * client may hold what it guarded. Stays pending after close().
   */
  readonly lost: Promise<LeaseLostError>;
  /** Stops renewing and revokes the lease (its keys go at once); a lease already gone is no error. */
  close(): Promise<void>;
}

export interface KeepLeaseOptions extends GrantLeaseOptions {
  /** Renewals per TTL. @default 3 */
  readonly renewalsPerTtl?: number;
}

/** What keepLease needs of the client. */
export interface LeaseCalls {
  grantLease(ttlSeconds: number, opts?: GrantLeaseOptions): Promise<LeaseGrant>;
  keepAliveLease(id: number, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<LeaseGrant>;
  revokeLease(id: number): Promise<{ revision: number; deleted: number }>;
}

/**
 * Grants a lease and keeps it alive. A renewal is judged from when it was SENT: the leader renews
 * from when it acknowledges, which is later, so the client's idea of the deadline is never later
 * than the leader's. Renewals retry (on any node the client knows) until one is acknowledged or the
 * TTL since the last acknowledged one has passed; then the lease is reported lost.
 * Its timers keep the process alive until close() or the loss.
 */
export async function keepLease(calls: LeaseCalls, ttlSeconds: number, opts: KeepLeaseOptions = {}): Promise<KeptLease> {
  const perTtl = opts.renewalsPerTtl ?? 3;
  if (!Number.isFinite(perTtl) || perTtl < 1) throw new TypeError(`renewalsPerTtl must be at least 1, not ${perTtl}`);
  const sentAt = Date.now();
  const granted = await calls.grantLease(ttlSeconds, opts);
  const { id } = granted;
  const ttlMs = granted.ttlSeconds * 1000;
  let validUntil = sentAt + ttlMs;
  let isClosed = false;
  // Aborted by close(): a renewal in flight (which may wait up to the TTL for a node that does
  // not answer) is cut at once instead of holding close() back.
  const closing = new AbortController();
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;
  let reportLost!: (err: LeaseLostError) => void;
  const lost = new Promise<LeaseLostError>((resolve) => (reportLost = resolve));
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, Math.max(0, ms));
    });

  const loop = (async () => {
    let nextAt = sentAt + ttlMs / perTtl;
    while (!isClosed) {
      await sleep(nextAt - Date.now());
      if (isClosed) return;
      const at = Date.now();
      const left = validUntil - at;
      if (left <= 0) {
        reportLost(new LeaseLostError('LEASE_NOT_RENEWED', id, `lease ${id} could not be renewed within its ${granted.ttlSeconds} s TTL`));
        return;
      }
      try {
        await calls.keepAliveLease(id, { timeoutMs: left, signal: closing.signal });
        validUntil = at + ttlMs;
        nextAt = at + ttlMs / perTtl;
      } catch (err) {
        if (isClosed) return;
        if (err instanceof NotFoundError) {
          reportLost(new LeaseLostError('LEASE_NOT_FOUND', id, `lease ${id} is gone (expired or revoked)`, err));
          return;
        }
        // Any other failure: try again soon, while the lease may still be alive.
        nextAt = Date.now() + Math.min(500, ttlMs / 10);
      }
    }
  })();

  return {
    id,
    ttlSeconds: granted.ttlSeconds,
    lost,
    close: async () => {
      if (isClosed) return;
      isClosed = true;
      closing.abort();
      if (timer !== null) clearTimeout(timer);
      (wake as (() => void) | null)?.();
      await loop;
      try {
        await calls.revokeLease(id);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    },
  };
}

function positiveWhole(n: number, name: string, min = 1): number {
  if (!Number.isSafeInteger(n) || n < min) throw new BadRequestError('BAD_REQUEST', `${name} must be a whole number from ${min}, not ${n}`, null);
  return n;
}
