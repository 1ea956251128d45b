// RaftKvClient: the typed client of the HTTP API in docs/api.md. Reads and writes go to the
// leader when it is known; every write carries an Idempotency-Key of `<clientId>/<seq>` that
// stays the same across the retries of one logical write (Raft dissertation §6.3).
import { randomUUID } from 'node:crypto';
import { EndpointSelector } from './endpoint-selector.js';
import { BadRequestError, RaftKvClientError } from './errors.js';
import { Requester, networkError, type Answer, type RequestSpec } from './http.js';
import { badResponse, json, memberFromJson, numberField, objectBody, recordFromJson, statusFromJson } from './responses.js';
import { toBytes, toJsonValue, utf8OrNull } from './values.js';
import {
  CONSISTENCY_LEVELS,
  DEFAULT_CLIENT_OPTIONS,
  type AddMemberRequest,
  type ClientOptions,
  type DeleteOptions,
  type EndpointStatus,
  type KvRecord,
  type ListResult,
  type Member,
  type NodeStatus,
  type PutOptions,
  type ReadOptions,
  type TxnOp,
  type TxnRequest,
  type TxnResult,
  type Value,
} from './types.js';

const CLIENT_ID_PATTERN = /^[^/\s]{1,128}$/;

export class RaftKvClient {
  /** The prefix of this client's Idempotency-Keys. */
  readonly clientId: string;
  private readonly selector: EndpointSelector;
  private readonly requester: Requester;
  private readonly attemptTimeoutMs: number;
  private seq = 0;

  constructor(options: ClientOptions) {
    const timeoutMs = positive(options.timeoutMs ?? DEFAULT_CLIENT_OPTIONS.timeoutMs, 'timeoutMs');
    const retries = options.retries ?? DEFAULT_CLIENT_OPTIONS.retries;
    if (!Number.isSafeInteger(retries) || retries < 0) throw new TypeError(`retries must be a whole number >= 0, not ${retries}`);
    this.clientId = options.clientId ?? randomUUID();
    if (!CLIENT_ID_PATTERN.test(this.clientId)) throw new TypeError('clientId must be 1 to 128 characters without "/" or spaces');
    this.selector = new EndpointSelector(options.endpoints);
    this.attemptTimeoutMs = positive(options.attemptTimeoutMs ?? Math.min(timeoutMs, DEFAULT_CLIENT_OPTIONS.attemptTimeoutMs), 'attemptTimeoutMs');
    this.requester = new Requester({
      selector: this.selector,
      fetch: options.fetch ?? globalThis.fetch,
      timeoutMs,
      retries,
      attemptTimeoutMs: this.attemptTimeoutMs,
      backoffMs: positive(options.backoffMs ?? DEFAULT_CLIENT_OPTIONS.backoffMs, 'backoffMs'),
      maxBackoffMs: positive(options.maxBackoffMs ?? DEFAULT_CLIENT_OPTIONS.maxBackoffMs, 'maxBackoffMs'),
    });
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

  async put(key: string, value: Value, opts: PutOptions = {}): Promise<{ index: number }> {
    const query = new URLSearchParams();
    if (opts.prevValue !== undefined) query.set('prevValue', queryText(opts.prevValue, 'prevValue'));
    if (opts.prevIndex !== undefined) query.set('prevIndex', String(wholeNumber(opts.prevIndex, 'prevIndex')));
    if (opts.prevExist !== undefined) query.set('prevExist', String(opts.prevExist));
    const answer = await this.write(opts.idempotencyKey, {
      method: 'PUT',
      path: `${keyPath(key)}${queryString(query)}`,
      body: toBytes(value),
      contentType: 'application/octet-stream',
    });
    return { index: numberField(json(answer), 'index', answer) };
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

  async delete(key: string, opts: DeleteOptions = {}): Promise<{ index: number; deleted: boolean }> {
    const query = new URLSearchParams();
    if (opts.prevValue !== undefined) query.set('prevValue', queryText(opts.prevValue, 'prevValue'));
    if (opts.prevIndex !== undefined) query.set('prevIndex', String(wholeNumber(opts.prevIndex, 'prevIndex')));
    const answer = await this.write(opts.idempotencyKey, { method: 'DELETE', path: `${keyPath(key)}${queryString(query)}` });
    const body = json(answer);
    const deleted = (body as { deleted?: unknown }).deleted;
    if (typeof deleted !== 'boolean') throw badResponse('deleted', answer);
    return { index: numberField(body, 'index', answer), deleted };
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
    return { succeeded: body.succeeded, index: numberField(body, 'index', answer), responses };
  }

  /** The status of whichever node answers (the leader when known). */
  async status(): Promise<NodeStatus> {
    const answer = await this.requester.request({ method: 'GET', path: '/v1/status' });
    return statusFromJson(json(answer), answer);
  }

  /** Every configured endpoint's own status, one attempt each, side by side. */
  async statusOfAll(): Promise<EndpointStatus[]> {
    return Promise.all(
      this.selector.endpoints.map(async (endpoint): Promise<EndpointStatus> => {
        try {
          const answer = await this.requester.attempt(endpoint, { method: 'GET', path: '/v1/status' }, this.attemptTimeoutMs);
          if (answer.status !== 200) throw new RaftKvClientError(`HTTP_${answer.status}`, `HTTP ${answer.status}`, answer.status, { endpoint });
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
    return objectBody(await this.write(undefined, { method: 'POST', path: `/v1/members/${encodeURIComponent(id)}/promote` }));
  }

  /** Hands leadership to `to` (or the most up-to-date voter); resolves with the new leader's id. */
  async transferLeader(to?: string): Promise<{ leader: string }> {
    const body = JSON.stringify(to === undefined ? {} : { to });
    const answer = await this.write(undefined, { method: 'POST', path: '/v1/leader/transfer', body, contentType: 'application/json' });
    const leader = (json(answer) as { leader?: unknown }).leader;
    if (typeof leader !== 'string') throw badResponse('leader', answer);
    return { leader };
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
  return op.type === 'put' ? { type: 'put', key: op.key, ...toJsonValue(op.value) } : { type: op.type, key: op.key };
}
