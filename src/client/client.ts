// RaftKvClient: the typed client of the HTTP API in docs/api.md. Reads and writes go to the
// leader when it is known; every write carries an Idempotency-Key of `<clientId>/<seq>` that
// stays the same across the retries of one logical write (Raft dissertation §6.3).
import { randomUUID } from 'node:crypto';
import { EndpointSelector } from './endpoint-selector.js';
import { BadRequestError, RaftKvClientError, errorFromResponse } from './errors.js';
import { Requester, networkError, parseErrorBody, type Answer, type RequestSpec } from './http.js';
import { LeanHttpTransport } from './lean-transport.js';
import { MuxTransport } from './mux-transport.js';
import * as leaseApi from './leases.js';
import * as lockApi from './locks.js';
import { badResponse, json, memberFromJson, numberField, objectBody, recordFromJson, statusFromJson } from './responses.js';
import { toBytes, toJsonValue, utf8OrNull } from './values.js';
import { watchEvents, type WatchConnectionOptions, type WatchEvent, type WatchOptions, type WatchTarget } from './watch.js';
import {
  CONSISTENCY_LEVELS,
  DEFAULT_CLIENT_OPTIONS,
  type AddMemberRequest,
  type ClientOptions,
  type DeleteOptions,
  type EndpointReadiness,
  type EndpointStatus,
  type KvRecord,
  type ListResult,
  type Member,
  type NodeStatus,
  type PutOptions,
  type WriteResult,
  type ReadOptions,
  type TxnOp,
  type TxnRequest,
  type TxnResult,
  type Value,
} from './types.js';

const CLIENT_ID_PATTERN = /^[^/\s]{1,128}$/;
// RFC 6750's b64token, the characters a bearer token may have; anything else could not travel in a header.
const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;

export class RaftKvClient {
  /** The prefix of this client's Idempotency-Keys. */
  readonly clientId: string;
  private readonly selector: EndpointSelector;
  private readonly requester: Requester;
  private readonly attemptTimeoutMs: number;
  private readonly transport: LeanHttpTransport | undefined;
  private readonly mux: MuxTransport | undefined;
  private readonly watchConnection: WatchConnectionOptions;
  private seq = 0;

  constructor(options: ClientOptions) {
    const timeoutMs = positive(options.timeoutMs ?? DEFAULT_CLIENT_OPTIONS.timeoutMs, 'timeoutMs');
    const retries = options.retries ?? DEFAULT_CLIENT_OPTIONS.retries;
    if (!Number.isSafeInteger(retries) || retries < 0) throw new TypeError(`retries must be a whole number >= 0, not ${retries}`);
    this.clientId = options.clientId ?? randomUUID();
    if (!CLIENT_ID_PATTERN.test(this.clientId)) throw new TypeError('clientId must be 1 to 128 characters without "/" or spaces');
    this.selector = new EndpointSelector(options.endpoints);
    this.attemptTimeoutMs = positive(options.attemptTimeoutMs ?? Math.min(timeoutMs, DEFAULT_CLIENT_OPTIONS.attemptTimeoutMs), 'attemptTimeoutMs');
    if (options.token !== undefined && (typeof options.token !== 'string' || !TOKEN_PATTERN.test(options.token))) {
      throw new TypeError('token must be a bearer token: letters, digits and -._~+/ (then = padding), no spaces or line breaks');
    }
    const hasTlsOptions = options.ca !== undefined || options.cert !== undefined || options.key !== undefined;
    if (options.fetch !== undefined && hasTlsOptions) throw new TypeError('a custom fetch cannot take the ca, cert or key options; give one or the other');
    this.transport = options.fetch === undefined ? new LeanHttpTransport(options) : undefined;
    this.mux = this.transport !== undefined && options.multiplex !== false ? new MuxTransport(this.transport.fetch) : undefined;
    this.requester = new Requester({
      selector: this.selector,
      fetch: options.fetch ?? this.mux?.fetch ?? this.transport!.fetch,
      ...(options.token !== undefined ? { token: options.token } : {}),
      timeoutMs,
      retries,
      attemptTimeoutMs: this.attemptTimeoutMs,
      backoffMs: positive(options.backoffMs ?? DEFAULT_CLIENT_OPTIONS.backoffMs, 'backoffMs'),
      maxBackoffMs: positive(options.maxBackoffMs ?? DEFAULT_CLIENT_OPTIONS.maxBackoffMs, 'maxBackoffMs'),
    });
    this.watchConnection = {
      endpoints: this.selector.endpoints,
      ...(options.token !== undefined ? { token: options.token } : {}),
      tls: { ...(options.ca !== undefined ? { ca: options.ca } : {}), ...(options.cert !== undefined ? { cert: options.cert } : {}), ...(options.key !== undefined ? { key: options.key } : {}) },
      backoffMs: positive(options.backoffMs ?? DEFAULT_CLIENT_OPTIONS.backoffMs, 'backoffMs'),
      maxBackoffMs: positive(options.maxBackoffMs ?? DEFAULT_CLIENT_OPTIONS.maxBackoffMs, 'maxBackoffMs'),
      connectTimeoutMs: this.attemptTimeoutMs,
    };
  }

  /** The endpoints as configured (normalised). */
  get endpoints(): readonly string[] {
    return this.selector.endpoints;
  }

  /** The leader's client URL, as last reported by any node; null when none is known. */
  get leader(): string | null {
    return this.selector.knownLeader;
  }

  /** A fresh Idempotency-Key: one per logical write, shared by all its retries. */
  nextIdempotencyKey(): string {
    this.seq += 1;
    return `${this.clientId}/${this.seq}`;
  }

  async put(key: string, value: Value, opts: PutOptions = {}): Promise<WriteResult> {
    const query = new URLSearchParams();
    if (opts.prevValue !== undefined) query.set('prevValue', queryText(opts.prevValue, 'prevValue'));
    if (opts.prevIndex !== undefined) query.set('prevIndex', String(wholeNumber(opts.prevIndex, 'prevIndex')));
    if (opts.prevExist !== undefined) query.set('prevExist', String(opts.prevExist));
    if (opts.lease !== undefined && opts.lease !== 0) query.set('lease', String(wholeNumber(opts.lease, 'lease')));
    const answer = await this.write(opts.idempotencyKey, {
      method: 'PUT',
      path: `${keyPath(key)}${queryString(query)}`,
      body: toBytes(value),
      contentType: 'application/octet-stream',
    });
    const body = json(answer);
    return { index: numberField(body, 'index', answer), revision: numberField(body, 'revision', answer) };
  }

  /** The key's record, or null when the key does not exist. */
  async get(key: string, opts: ReadOptions = {}): Promise<KvRecord | null> {
    const answer = await this.requester.request({ method: 'GET', path: `${keyPath(key)}${queryString(readQuery(opts))}`, passStatuses: [404] });
    if (answer.status === 404) return null;
    return recordFromJson(json(answer), answer);
  }

  /** The key's value as UTF-8 text (invalid bytes become U+FFFD), or null when absent. */
  async getString(key: string, opts: ReadOptions = {}): Promise<string | null> {
    const record = await this.get(key, opts);
    return record === null ? null : new TextDecoder().decode(record.value);
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<WriteResult & { deleted: boolean }> {
    const query = new URLSearchParams();
    if (opts.prevValue !== undefined) query.set('prevValue', queryText(opts.prevValue, 'prevValue'));
    if (opts.prevIndex !== undefined) query.set('prevIndex', String(wholeNumber(opts.prevIndex, 'prevIndex')));
    const answer = await this.write(opts.idempotencyKey, { method: 'DELETE', path: `${keyPath(key)}${queryString(query)}` });
    const body = json(answer);
    const deleted = (body as { deleted?: unknown }).deleted;
    if (typeof deleted !== 'boolean') throw badResponse('deleted', answer);
    return { index: numberField(body, 'index', answer), revision: numberField(body, 'revision', answer), deleted };
  }

  /** Keys starting with `prefix`, in key order, at most `limit` of them (server default 1000). */
  async list(prefix: string, limit?: number, opts: ReadOptions = {}): Promise<ListResult> {
    const query = readQuery(opts);
    query.set('prefix', prefix);
    if (limit !== undefined) query.set('limit', String(wholeNumber(limit, 'limit')));
    const answer = await this.requester.request({ method: 'GET', path: `/v1/kv${queryString(query)}` });
    const body = json(answer) as { items?: unknown; more?: unknown };
    if (!Array.isArray(body.items) || typeof body.more !== 'boolean') throw badResponse('items/more', answer);
    return { items: body.items.map((item: unknown) => recordFromJson(item, answer)), more: body.more };
  }

  /**
   * Drops the store's history before `revision` (an admin request): reads and watches at older
   * revisions answer COMPACTED from then on. Refused when `revision` is in the future or already
   * compacted.
   */
  async compact(revision: number): Promise<{ revision: number; compactRevision: number }> {
    const answer = await this.write(undefined, { method: 'POST', path: '/v1/compact', body: JSON.stringify({ revision: wholeNumber(revision, 'revision') }), contentType: 'application/json' });
    const body = json(answer);
    return { revision: numberField(body, 'revision', answer), compactRevision: numberField(body, 'compactRevision', answer) };
  }

  // Leases (docs/client.md "Leases"; the calls live in leases.ts).
  /** Grants a lease; its TTL may come back raised to the cluster's minimum. */
  grantLease(ttlSeconds: number, opts: leaseApi.GrantLeaseOptions = {}): Promise<leaseApi.LeaseGrant> {
    return leaseApi.grantLease(this.requester, this.nextIdempotencyKey(), ttlSeconds, opts);
  }
  /** Renews the lease; `signal` abandons the renewal (AbortedError). */
  keepAliveLease(id: number, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<leaseApi.LeaseGrant> {
    return leaseApi.keepAliveLease(this.requester, id, opts);
  }
  leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<leaseApi.LeaseTimeToLive> {
    return leaseApi.leaseTimeToLive(this.requester, id, opts);
  }
  leases(opts: { after?: number; limit?: number } = {}): Promise<leaseApi.LeaseList> {
    return leaseApi.listLeases(this.requester, opts);
  }
  revokeLease(id: number): Promise<{ revision: number; deleted: number }> {
    return leaseApi.revokeLease(this.requester, this.nextIdempotencyKey(), id);
  }
  /** Grants a lease and keeps it alive until close() or its loss (`lost`). */
  lease(ttlSeconds: number, opts: leaseApi.KeepLeaseOptions = {}): Promise<leaseApi.KeptLease> {
    return leaseApi.keepLease(this, ttlSeconds, opts);
  }

  // Locks and elections (docs/client.md "Locks and elections"; the calls live in locks.ts).
  /** Takes the lock `name` with a lease of its own, waiting for its turn; `token` is its fencing token. */
  lock(name: string, opts: lockApi.LockOptions = {}): Promise<lockApi.HeldLock> {
    return lockApi.lock(this.lockCalls, name, opts);
  }
  /** Campaigns in the election `name` with `value`; resolves once this client leads. */
  campaign(name: string, value: string, opts: Omit<lockApi.LockOptions, 'wait'> = {}): Promise<lockApi.Leadership> {
    return lockApi.campaign(this.lockCalls, name, value, opts);
  }
  /** The election's leader now, or null. */
  electionLeader(name: string): Promise<lockApi.Contender | null> {
    return lockApi.electionLeader(this.lockCalls, name);
  }
  private get lockCalls(): lockApi.LockCalls {
    return { request: (spec) => this.requester.request(spec), lease: (ttl) => this.lease(ttl) };
  }

  /**
   * The changes of a key or of a prefix, as they are applied, in revision order, each once: an
   * async iterable that reconnects to the next endpoint after a disconnect and resumes right
   * after the last event it gave (docs/client.md "Watch"). It ends on `signal`, on `break`, or
   * after a `compacted` event; a request the nodes refuse (bad input, 401, 403) throws.
   */
  watch(target: WatchTarget, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    return { [Symbol.asyncIterator]: () => watchEvents(this.watchConnection, target, opts) };
  }

  /** An etcd-style transaction, applied atomically: `success` if every compare holds, else `failure`. */
  async txn(request: TxnRequest, opts: { idempotencyKey?: string } = {}): Promise<TxnResult> {
    const wire = {
      compare: request.compare.map((c) => (typeof c.value === 'number' ? { ...c } : { ...c, ...toJsonValue(c.value) })),
      success: request.success.map(opToJson),
      failure: request.failure.map(opToJson),
    };
    const answer = await this.write(opts.idempotencyKey, { method: 'POST', path: '/v1/txn', body: JSON.stringify(wire), contentType: 'application/json' });
    const body = json(answer) as { succeeded?: unknown; index?: unknown; responses?: unknown; results?: unknown };
    if (typeof body.succeeded !== 'boolean') throw badResponse('succeeded', answer);
    const responses = Array.isArray(body.responses) ? body.responses : Array.isArray(body.results) ? body.results : [];
    return { succeeded: body.succeeded, index: numberField(body, 'index', answer), revision: numberField(body, 'revision', answer), responses };
  }

  /** The status of whichever node answers (the leader when known). */
  async status(): Promise<NodeStatus> {
    const answer = await this.requester.request({ method: 'GET', path: '/v1/status' });
    return statusFromJson(json(answer), answer);
  }

  /**
   * Every configured endpoint's readiness (`GET /readyz`), one attempt each: ready means the node
   * knows a leader that holds a quorum and has applied what that leader committed. A node too
   * old to have /readyz (404) is judged by its status: ready when it knows a leader.
   */
  async readyOfAll(): Promise<EndpointReadiness[]> {
    return Promise.all(this.selector.endpoints.map((endpoint) => this.readinessOf(endpoint)));
  }

  /** Whether any endpoint is ready, i.e. the cluster has a leader with a quorum (see `readyOfAll`). */
  async isReady(): Promise<boolean> {
    return (await this.readyOfAll()).some((r) => r.isReady);
  }

  private async readinessOf(endpoint: string): Promise<EndpointReadiness> {
    const notReady = (code: string, reason: string): EndpointReadiness => ({ endpoint, isReady: false, leader: null, code, reason });
    try {
      const answer = await this.requester.attempt(endpoint, { method: 'GET', path: '/readyz' }, this.attemptTimeoutMs);
      if (answer.status === 200) {
        const leader = (objectBody(answer) as { leader?: unknown }).leader;
        return { endpoint, isReady: true, leader: typeof leader === 'string' ? leader : null, code: null, reason: null };
      }
      if (answer.status === 404) {
        const status = await this.requester.attempt(endpoint, { method: 'GET', path: '/v1/status' }, this.attemptTimeoutMs);
        if (status.status !== 200) return notReady(parseErrorBody(status).code, parseErrorBody(status).message);
        const { leader } = statusFromJson(json(status), status);
        if (leader === null) return notReady('NOT_READY', 'no leader known (this node has no /readyz; judged by its status)');
        return { endpoint, isReady: true, leader, code: null, reason: null };
      }
      const { code, message } = parseErrorBody(answer);
      return notReady(code, message);
    } catch (err) {
      const error = err instanceof RaftKvClientError ? err : networkError(endpoint, err, this.attemptTimeoutMs);
      return notReady(error.code, error.message);
    }
  }

  /** Every configured endpoint's own status, one attempt each, side by side. */
  async statusOfAll(): Promise<EndpointStatus[]> {
    return Promise.all(
      this.selector.endpoints.map(async (endpoint): Promise<EndpointStatus> => {
        try {
          const answer = await this.requester.attempt(endpoint, { method: 'GET', path: '/v1/status' }, this.attemptTimeoutMs);
          if (answer.status !== 200) {
            const { code, message } = parseErrorBody(answer);
            throw errorFromResponse(answer.status, code, `${endpoint}: ${message}`, endpoint);
          }
          return { endpoint, status: statusFromJson(json(answer), answer) };
        } catch (err) {
          return { endpoint, error: err instanceof RaftKvClientError ? err : networkError(endpoint, err, this.attemptTimeoutMs) };
        }
      }),
    );
  }

  async members(): Promise<Member[]> {
    const answer = await this.requester.request({ method: 'GET', path: '/v1/members' });
    const members = (json(answer) as { members?: unknown }).members;
    if (!Array.isArray(members)) throw badResponse('members', answer);
    return members.map((m: unknown) => memberFromJson(m, answer));
  }

  /** Adds a member; a voter joins as a learner and is promoted once caught up. Returns the server's answer. */
  async addMember(member: AddMemberRequest): Promise<Readonly<Record<string, unknown>>> {
    const body = JSON.stringify({ id: member.id, peerAddr: member.peerAddr, clientAddr: member.clientAddr, role: member.role ?? 'voter' });
    return objectBody(await this.write(undefined, { method: 'POST', path: '/v1/members', body, contentType: 'application/json' }));
  }

  async removeMember(id: string): Promise<Readonly<Record<string, unknown>>> {
    return objectBody(await this.write(undefined, { method: 'DELETE', path: `/v1/members/${encodeURIComponent(id)}` }));
  }

  async promoteMember(id: string): Promise<Readonly<Record<string, unknown>>> {
    return objectBody(await this.write(undefined, { method: 'POST', path: `/v1/members/${encodeURIComponent(id)}/promote`, body: '{}' }));
  }

  /** Hands leadership to `to` (or the most up-to-date voter); resolves with the new leader's id. */
  async transferLeader(to?: string): Promise<{ leader: string }> {
    const body = JSON.stringify(to === undefined ? {} : { to });
    const answer = await this.write(undefined, { method: 'POST', path: '/v1/leader/transfer', body, contentType: 'application/json' });
    const leader = (json(answer) as { leader?: unknown }).leader;
    if (typeof leader !== 'string') throw badResponse('leader', answer);
    return { leader };
  }

  /**
   * Closes the client's idle keep-alive connections. Optional: they never keep the process alive,
   * and a request after close() simply opens new ones.
   */
  close(): void {
    this.mux?.close();
    this.transport?.close();
  }

  private write(idempotencyKey: string | undefined, spec: Omit<RequestSpec, 'idempotencyKey'>): Promise<Answer> {
    return this.requester.request({ ...spec, idempotencyKey: idempotencyKey ?? this.nextIdempotencyKey() });
  }
}

function keyPath(key: string): string {
  if (typeof key !== 'string' || key === '') throw new BadRequestError('BAD_KEY', 'the key must be a non-empty string', null);
  try {
    return `/v1/kv/${encodeURIComponent(key)}`;
  } catch {
    throw new BadRequestError('BAD_KEY', 'the key is not valid Unicode (a lone surrogate)', null);
  }
}

function queryString(query: URLSearchParams): string {
  const text = query.toString();
  return text === '' ? '' : `?${text}`;
}

function readQuery(opts: ReadOptions): URLSearchParams {
  const query = new URLSearchParams();
  if (opts.consistency !== undefined) {
    if (!(CONSISTENCY_LEVELS as readonly string[]).includes(opts.consistency)) {
      throw new BadRequestError('BAD_REQUEST', `consistency must be one of ${CONSISTENCY_LEVELS.join(', ')}`, null);
    }
    query.set('consistency', opts.consistency);
  }
  if (opts.revision !== undefined) query.set('revision', String(wholeNumber(opts.revision, 'revision')));
  return query;
}

// A query string carries text, so a binary prevValue cannot be expressed in it.
function queryText(value: Value, name: string): string {
  const text = typeof value === 'string' ? value : utf8OrNull(value);
  if (text === null) throw new BadRequestError('BAD_REQUEST', `${name} must be valid UTF-8 to travel in the query string`, null);
  return text;
}

function wholeNumber(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new BadRequestError('BAD_REQUEST', `${name} must be a whole number >= 0, not ${n}`, null);
  return n;
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new TypeError(`${name} must be a positive number of milliseconds, not ${n}`);
  return n;
}

function opToJson(op: TxnOp): Record<string, unknown> {
  if (op.type !== 'put') return { type: op.type, key: op.key };
  return { type: 'put', key: op.key, ...toJsonValue(op.value), ...(op.lease !== undefined && op.lease !== 0 ? { lease: op.lease } : {}) };
}
