// The HTTP API of ../shared/API.md (mirrored in docs/api.md) on node:http: routing, strict input
// validation (unknown parameters, bad JSON, oversize bodies are 4xx with a JSON error and change
// nothing), forwarding to the leader, deadlines, and the raftkv-leader / raftkv-node headers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { recordToJson } from '../kv/index.js';
import { isTracing, trace } from '../node/trace.js';
import { ApiError } from './errors.js';
import type { Logger } from './logger.js';
import { Counter, Histogram, LATENCY_BUCKETS_SECONDS, type Registry } from './metrics.js';

export const CONSISTENCY_LEVELS = ['linearizable', 'lease', 'stale'] as const;
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

export interface WriteConditions {
  readonly prevValue?: Uint8Array;
  readonly prevIndex?: number;
  readonly prevExist?: boolean;
}

export interface KvRecordView {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modIndex: number;
  readonly version: number;
}

export interface MemberView {
  readonly id: string;
  readonly peerAddr: string;
  readonly clientAddr: string;
  readonly role: 'voter' | 'learner';
}

export interface StatusView {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly members: readonly MemberView[];
}

/** What a request needs of the node; the service implements it (leader-only parts included). */
export interface KvApi {
  readonly id: string;
  isLeader(): boolean;
  /** The leader's client URL, if one is known. */
  leaderUrl(): string | null;
  put(key: string, value: Uint8Array, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number): Promise<{ index: number }>;
  delete(key: string, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number): Promise<{ index: number; deleted: boolean }>;
  txn(body: unknown, idempotencyKey: string | undefined, deadline: number): Promise<unknown>;
  /** Resolves once a read at `consistency` may be served from this node's state machine. */
  readBarrier(consistency: Consistency, deadline: number): Promise<void>;
  get(key: string): KvRecordView | null;
  list(prefix: string, limit: number): { items: KvRecordView[]; more: boolean };
  status(): StatusView;
  members(): readonly MemberView[];
  validateKey(key: string): void;
  validateValue(value: Uint8Array): void;
}

export interface ForwardedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface ForwardedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface ApiServerOptions {
  readonly api: KvApi;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Sends a request to the leader and returns its answer; absent means "answer 503". */
  readonly forward?: (req: ForwardedRequest) => Promise<ForwardedResponse>;
  /** @default 5000 */
  readonly requestTimeoutMs?: number;
  /** @default 1 MiB + 64 KiB */
  readonly maxBodyBytes?: number;
  /** @default 10000 — requests in progress on this node; more get 503 */
  readonly maxPendingRequests?: number;
  /** Extra routes (membership, leader transfer) mounted by later layers. */
  readonly extraRoutes?: (req: ParsedRequest) => Promise<Reply> | null;
}

export interface ParsedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: Uint8Array;
  readonly deadline: number;
}

export interface Reply {
  readonly status: number;
  readonly json?: unknown;
  readonly bytes?: Uint8Array;
  /** With `bytes`. @default 'application/octet-stream' */
  readonly contentType?: string;
  /** Seconds, sent as Retry-After (503s). */
  readonly retryAfter?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface Api {
  readonly server: Server;
  /** Answers a request a follower forwarded to this node over the peer channel. */
  answerForwarded(req: ForwardedRequest): Promise<ForwardedResponse>;
}

export function createApiServer(options: ApiServerOptions): Api {
  const { api, logger, registry } = options;
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const maxBody = options.maxBodyBytes ?? (1 << 20) + (64 << 10);
  const maxPending = options.maxPendingRequests ?? 10_000;
  const requests = registry.register(new Counter('raftkv_http_requests_total', 'HTTP requests by route and status'));
  const latency = registry.register(new Histogram('raftkv_http_request_duration_seconds', 'HTTP request latency by route', LATENCY_BUCKETS_SECONDS));
  let pending = 0;

  const server = createServer((req, res) => {
    const started = performance.now();
    if (isTracing) trace('http-in', -1);
    const route = routeName(req.url ?? '/');
    if (pending >= maxPending) {
      send(res, api, errorReply(new ApiError('OVERLOADED', `more than ${maxPending} requests in progress`)));
      requests.inc({ route, status: '503' });
      return;
    }
    pending++;
    void handle(req, res)
      .catch((err: unknown) => errorReply(err, logger))
      .then((reply) => {
        send(res, api, reply);
        requests.inc({ route, status: String(reply.status) });
        latency.observe((performance.now() - started) / 1000, { route });
      })
      .finally(() => pending--);
  });
  server.keepAliveTimeout = 30_000;

  async function answerForwarded(req: ForwardedRequest): Promise<ForwardedResponse> {
    let reply: Reply;
    try {
      const url = parseTarget(req.path);
      const parsed: ParsedRequest = {
        method: req.method,
        path: url.path,
        query: url.query,
        headers: req.headers,
        body: req.body,
        deadline: Date.now() + requestDeadlineMs(req.headers['request-timeout'], timeoutMs),
      };
      // Forwarded once only: a node that is no longer the leader says so rather than bounce it.
      if (requiresLeader(parsed) && !api.isLeader()) throw new ApiError('NO_LEADER', 'this node is no longer the leader');
      reply = await route(parsed);
    } catch (err) {
      reply = errorReply(err, logger);
    }
    const headers: Record<string, string> = {};
    if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
    if (reply.bytes !== undefined) {
      headers['content-type'] = reply.contentType ?? 'application/octet-stream';
      return { status: reply.status, headers, body: reply.bytes };
    }
    headers['content-type'] = 'application/json';
    return { status: reply.status, headers, body: new TextEncoder().encode(JSON.stringify(reply.json)) };
  }

  async function handle(req: IncomingMessage, _res: ServerResponse): Promise<Reply> {
    const url = parseTarget(req.url ?? '/');
    const body = await readBody(req, maxBody);
    if (isTracing) trace('http-body', -1);
    const parsed: ParsedRequest = {
      method: req.method ?? 'GET',
      path: url.path,
      query: url.query,
      headers: req.headers,
      body,
      deadline: Date.now() + requestDeadlineMs(req.headers['request-timeout'], timeoutMs),
    };
    const needsLeader = requiresLeader(parsed);
    if (needsLeader && !api.isLeader()) {
      if (options.forward === undefined) throw new ApiError('NO_LEADER', 'not the leader');
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'idempotency-key', 'request-timeout']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const out = await options.forward({ method: parsed.method, path: req.url ?? '/', headers, body });
      const retryAfter = Number(out.headers['retry-after']);
      return {
        status: out.status,
        bytes: out.body,
        contentType: out.headers['content-type'] ?? 'application/octet-stream',
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfter } : {}),
      };
    }
    return route(parsed);
  }

  async function route(r: ParsedRequest): Promise<Reply> {
    const { method, path } = r;
    if (path === '/healthz') {
      expectMethod(method, ['GET']);
      return { status: 200, json: { ok: true, id: api.id } };
    }
    if (path === '/metrics') {
      expectMethod(method, ['GET']);
      return { status: 200, bytes: new TextEncoder().encode(registry.render()), contentType: 'text/plain; version=0.0.4' };
    }
    if (path === '/v1/status') {
      expectMethod(method, ['GET']);
      allowParams(r.query, []);
      return { status: 200, json: api.status() };
    }
    if (path === '/v1/members' && method === 'GET') {
      allowParams(r.query, []);
      return { status: 200, json: { members: api.members() } };
    }
    if (path === '/v1/kv' || path === '/v1/kv/') {
      // PUT or DELETE of "/v1/kv/" names a key, and that key is empty.
      if (path === '/v1/kv/' && (method === 'PUT' || method === 'DELETE')) throw new ApiError('BAD_KEY', 'the key is empty');
      expectMethod(method, ['GET']);
      allowParams(r.query, ['prefix', 'limit', 'consistency']);
      const prefix = r.query.get('prefix') ?? '';
      const limit = intParam(r.query, 'limit', 1000, 1, 10_000);
      await api.readBarrier(consistencyParam(r.query), r.deadline);
      const { items, more } = api.list(prefix, limit);
      return { status: 200, json: { items: items.map(recordToJson), more } };
    }
    if (path.startsWith('/v1/kv/')) return kvRoute(r, decodeKey(path.slice('/v1/kv/'.length)));
    if (path === '/v1/txn') {
      expectMethod(method, ['POST']);
      allowParams(r.query, []);
      const result = await api.txn(parseJson(r.body), idempotencyKey(r), r.deadline);
      return { status: 200, json: result };
    }
    const extra = options.extraRoutes?.(r);
    if (extra) return extra;
    throw new ApiError('NOT_FOUND', `no such endpoint: ${method} ${path}`);
  }

  async function kvRoute(r: ParsedRequest, key: string): Promise<Reply> {
    api.validateKey(key);
    switch (r.method) {
      case 'GET': {
        allowParams(r.query, ['consistency', 'raw']);
        await api.readBarrier(consistencyParam(r.query), r.deadline);
        const rec = api.get(key);
        if (rec === null) throw new ApiError('NOT_FOUND', `key not found: ${key}`);
        if (r.query.has('raw')) return { status: 200, bytes: rec.value };
        return { status: 200, json: recordToJson(rec) };
      }
      case 'PUT': {
        allowParams(r.query, ['prevValue', 'prevIndex', 'prevExist']);
        api.validateValue(r.body);
        return { status: 200, json: await api.put(key, r.body, conditions(r.query, true), idempotencyKey(r), r.deadline) };
      }
      case 'DELETE': {
        allowParams(r.query, ['prevValue', 'prevIndex']);
        return { status: 200, json: await api.delete(key, conditions(r.query, false), idempotencyKey(r), r.deadline) };
      }
      default:
        throw new ApiError('METHOD_NOT_ALLOWED', `${r.method} is not allowed on /v1/kv/{key}`);
    }
  }

  return { server, answerForwarded };
}

// Only writes and linearizable/lease reads must reach the leader; everything else answers here.
function requiresLeader(r: ParsedRequest): boolean {
  const p = r.path;
  if (p.startsWith('/v1/kv')) {
    if (r.method === 'GET') return (r.query.get('consistency') ?? 'linearizable') !== 'stale';
    return r.method === 'PUT' || r.method === 'DELETE';
  }
  if (p === '/v1/txn' || p.startsWith('/v1/internal/')) return r.method === 'POST';
  if (p.startsWith('/v1/members') || p === '/v1/leader/transfer') return r.method !== 'GET';
  return false;
}

/** Characters a request target may hold for the fast path: no dot-segment or encoding work for URL. */
const PLAIN_TARGET = /^\/[A-Za-z0-9\-_~!$&'()*+,;=:@%/?.]*$/;
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?:\/|\?|$)/i;

/**
 * Path and query of a request target. `new URL` (WHATWG parsing) costs a few microseconds per
 * request; a target of plain characters without dot segments parses to the same result by
 * splitting at the first `?`, so only other targets take the slow path.
 */
export function parseTarget(target: string): { path: string; query: URLSearchParams } {
  if (PLAIN_TARGET.test(target) && target[1] !== '/' && !DOT_SEGMENT.test(target)) {
    const q = target.indexOf('?');
    if (q === -1) return { path: target, query: new URLSearchParams() };
    return { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
  }
  const url = new URL(target, 'http://localhost');
  return { path: url.pathname, query: url.searchParams };
}

function routeName(url: string): string {
  const path = url.split('?')[0]!;
  if (path.startsWith('/v1/kv/')) return '/v1/kv/{key}';
  if (/^\/v1\/members\/[^/]+/.test(path)) return '/v1/members/{id}';
  return ['/v1/kv', '/v1/txn', '/v1/status', '/v1/members', '/v1/leader/transfer', '/healthz', '/metrics'].includes(path) ? path : 'other';
}

function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError('BAD_KEY', 'the key is not valid percent-encoding');
  }
}

function expectMethod(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw new ApiError('METHOD_NOT_ALLOWED', `${method} is not allowed here (use ${allowed.join(' or ')})`);
}

export function allowParams(query: URLSearchParams, allowed: string[]): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) throw new ApiError('BAD_REQUEST', `unknown query parameter "${name}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
  }
}

export function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const v = query.get(name);
  if (v === null) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ApiError('BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

function consistencyParam(query: URLSearchParams): Consistency {
  const v = query.get('consistency') ?? 'linearizable';
  if (!(CONSISTENCY_LEVELS as readonly string[]).includes(v)) throw new ApiError('BAD_REQUEST', `consistency must be one of ${CONSISTENCY_LEVELS.join(', ')}`);
  return v as Consistency;
}

function conditions(query: URLSearchParams, allowExist: boolean): WriteConditions {
  const cond: { prevValue?: Uint8Array; prevIndex?: number; prevExist?: boolean } = {};
  const pv = query.get('prevValue');
  if (pv !== null) cond.prevValue = new TextEncoder().encode(pv);
  if (query.has('prevIndex')) cond.prevIndex = intParam(query, 'prevIndex', 0, 0, Number.MAX_SAFE_INTEGER);
  const pe = query.get('prevExist');
  if (pe !== null && allowExist) {
    if (pe !== 'true' && pe !== 'false') throw new ApiError('BAD_REQUEST', 'prevExist must be true or false');
    cond.prevExist = pe === 'true';
  }
  return cond;
}

function idempotencyKey(r: ParsedRequest): string | undefined {
  const v = r.headers['idempotency-key'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[^/\s]{1,128}\/\d{1,15}$/.test(v)) {
    throw new ApiError('BAD_REQUEST', 'Idempotency-Key must be <client>/<seq> (seq a whole number)');
  }
  return v;
}

export function parseJson(body: Uint8Array): unknown {
  if (body.length === 0) throw new ApiError('BAD_REQUEST', 'a JSON body is required');
  try {
    return JSON.parse(utf8.decode(body)) as unknown;
  } catch {
    throw new ApiError('BAD_REQUEST', 'the body is not valid JSON');
  }
}

function requestDeadlineMs(header: string | string[] | undefined, fallback: number): number {
  if (typeof header !== 'string') return fallback;
  const n = Number(header);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 60_000) : fallback;
}

function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      req.resume();
      reject(new ApiError('BODY_TOO_LARGE', `the body is larger than ${max} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new ApiError('BODY_TOO_LARGE', `the body is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function errorReply(err: unknown, logger?: Logger): Reply {
  if (err instanceof ApiError) {
    return { status: err.status, json: { error: { code: err.code, message: err.message, ...(err.details ?? {}) } }, ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}) };
  }
  logger?.error('request failed', { error: err instanceof Error ? err.stack : String(err) });
  return { status: 500, json: { error: { code: 'INTERNAL', message: err instanceof Error ? err.message : 'internal error' } } };
}

function send(res: ServerResponse, api: KvApi, reply: Reply): void {
  if (res.headersSent) return;
  if (isTracing) trace('http-send', -1);
  const headers: Record<string, string> = { 'raftkv-node': api.id };
  const leader = api.leaderUrl();
  if (leader !== null) headers['raftkv-leader'] = leader;
  if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
  let body: Uint8Array | string;
  if (reply.bytes !== undefined) {
    headers['content-type'] = reply.contentType ?? 'application/octet-stream';
    body = reply.bytes;
  } else {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(reply.json);
  }
  res.writeHead(reply.status, headers);
  res.end(body);
  if (isTracing) trace('http-out', (reply.json as { index?: number } | undefined)?.index ?? -1);
}

