// The HTTP API's input and output pieces: request targets, query parameters, bodies (bounded in
// size and time), JSON, error replies, and a rate limit for error logs. Everything here treats
// its input as hostile: a malformed value is an ApiError (a 4xx with a JSON error), never a throw
// that could escape a request handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './errors.js';
import { recordToJson } from '../kv/index.js';
import { CONSISTENCY_LEVELS, type Consistency, type KvRecordView, type ParsedRequest, type WriteConditions } from './api-types.js';
import type { Logger } from './logger.js';

export interface Reply {
  readonly status: number;
  readonly json?: unknown;
  readonly bytes?: Uint8Array;
  /** With `bytes`. @default 'application/octet-stream' */
  readonly contentType?: string;
  /** Seconds, sent as Retry-After (503s). */
  readonly retryAfter?: number;
  /** Extra response headers (names in lower case). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A streamed answer (GET /v1/watch): called instead of writing a body, with the headers every
   * answer carries (node, cluster, leader, CORS); it writes the head and owns `res` from then on.
   */
  readonly stream?: (res: ServerResponse, headers: Readonly<Record<string, string>>) => void;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

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
  let url: URL;
  try {
    url = new URL(target, 'http://localhost');
  } catch {
    throw new ApiError('BAD_REQUEST', 'the request target is not a valid URL path');
  }
  return { path: url.pathname, query: url.searchParams };
}

export function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError('BAD_KEY', 'the key is not valid percent-encoding');
  }
}

export function expectMethod(method: string, allowed: readonly string[]): void {
  if (!allowed.includes(method)) throw new ApiError('METHOD_NOT_ALLOWED', `${method} is not allowed here (use ${allowed.join(' or ')})`);
}

export function allowParams(query: URLSearchParams, allowed: readonly string[]): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) throw new ApiError('BAD_REQUEST', `unknown query parameter "${name.slice(0, 64)}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
  }
}

export function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const v = query.get(name);
  if (v === null) return fallback;
  if (!/^\d{1,16}$/.test(v) || Number(v) < min || Number(v) > max) throw new ApiError('BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

/** `?revision=R`: a read of the store as it was at revision R (R ≥ 1); absent: now. */
export function revisionParam(query: URLSearchParams): number | undefined {
  return query.has('revision') ? intParam(query, 'revision', 0, 1, Number.MAX_SAFE_INTEGER) : undefined;
}

/** `?lease=ID` on a put: a lease id, or 0 for none. */
export function leaseParam(text: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new ApiError('BAD_REQUEST', 'lease must be a lease id (a whole number), or 0 for none');
  return Number(text);
}

/** The Raftkv-Revision header every key-value answer carries (API.md, "Coordination"). */
export function revisionHeader(revision: number): Record<string, string> {
  return { 'raftkv-revision': String(revision) };
}

export function parseJson(body: Uint8Array): unknown {
  if (body.length === 0) throw new ApiError('BAD_REQUEST', 'a JSON body is required');
  try {
    return JSON.parse(utf8.decode(body)) as unknown;
  } catch {
    throw new ApiError('BAD_REQUEST', 'the body is not valid JSON');
  }
}

/** A JSON object's fields, refusing any not in `allowed`. */
export function fields(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('BAD_REQUEST', 'the body must be a JSON object');
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw new ApiError('BAD_REQUEST', `unknown field "${k.slice(0, 64)}"`);
  return body as Record<string, unknown>;
}

/** A request's deadline header (ms), bounded to a minute; absent or malformed means `fallback`. */
export function requestDeadlineMs(header: string | string[] | undefined, fallback: number): number {
  if (typeof header !== 'string') return fallback;
  const n = Number(header);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 60_000) : fallback;
}

/** The body, at most `max` bytes (413 past it, whatever Content-Length claimed). */
export function bodyTooLarge(max: number): ApiError {
  return new ApiError('BODY_TOO_LARGE', `the body is larger than ${max} bytes`);
}

export function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      req.resume();
      reject(bodyTooLarge(max));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(bodyTooLarge(max));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    // A client that goes away mid-body: nothing to answer, and nothing worth an error log each.
    req.on('error', () => reject(new ApiError('BAD_REQUEST', 'the request was aborted')));
    req.on('aborted', () => reject(new ApiError('BAD_REQUEST', 'the request was aborted')));
  });
}

/** Runs a route; what it throws becomes the error reply (a route that answers, never rejects). */
export async function replyOrError(f: () => Promise<Reply>): Promise<Reply> {
  try {
    return await f();
  } catch (err) {
    return errorReply(err);
  }
}

export function errorReply(err: unknown, logger?: Logger): Reply {
  if (err instanceof ApiError) {
    return {
      status: err.status,
      json: { error: { code: err.code, message: err.message, ...(err.details ?? {}) } },
      ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
      ...(err.headers !== undefined ? { headers: err.headers } : {}),
    };
  }
  logger?.error('request failed', { error: err instanceof Error ? err.stack : String(err) });
  return { status: 500, json: { error: { code: 'INTERNAL', message: err instanceof Error ? err.message : 'internal error' } } };
}

/**
 * At most `perSecond` calls of `log` a second; the rest are counted and the count is reported
 * with the next line that gets through. A flood of bad requests costs a counter, not the disk.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  run(log: (suppressed: number) => void): void {
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perSecond) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    const n = this.suppressed;
    this.suppressed = 0;
    log(n);
  }
}

/** A logger whose warn and error lines pass through one RateLimitedLog (debug and info untouched). */
export function rateLimitedLogger(logger: Logger, perSecond: number): Logger {
  const limit = new RateLimitedLog(perSecond);
  const limited =
    (level: 'warn' | 'error') =>
    (msg: string, f?: Record<string, unknown>): void =>
      limit.run((suppressed) => logger[level](msg, suppressed > 0 ? { ...f, suppressedLines: suppressed } : f));
  return { ...logger, warn: limited('warn'), error: limited('error'), child: (f) => rateLimitedLogger(logger.child(f), perSecond) };
}

// ---- what a request wants, and the replies built for it ----------------------------------------

/** JSON bytes, or null when the value cannot be serialized (too large for one string, a cycle). */
export function serialize(value: unknown): Buffer | null {
  try {
    return Buffer.from(JSON.stringify(value));
  } catch {
    return null;
  }
}

export function replyTooLarge(): Reply {
  return errorReply(new ApiError('REPLY_TOO_LARGE', 'the answer would exceed --max-response-bytes; ask for less (a smaller limit or range)'));
}

/**
 * A listing serialized item by item, stopping before the reply would pass `maxBytes`; what it
 * leaves out is announced by `"more": true`, as for `limit`.
 */
export function listingReply(items: readonly KvRecordView[], more: boolean, maxBytes: number, headers?: Readonly<Record<string, string>>): Reply {
  const parts: string[] = [];
  let bytes = 32;
  let isCut = false;
  for (const rec of items) {
    const s = JSON.stringify(recordToJson(rec));
    const n = Buffer.byteLength(s) + 1;
    if (bytes + n > maxBytes) {
      isCut = true;
      break;
    }
    parts.push(s);
    bytes += n;
  }
  return { status: 200, bytes: Buffer.from(`{"items":[${parts.join(',')}],"more":${more || isCut}}`), contentType: 'application/json', ...(headers !== undefined ? { headers } : {}) };
}

/** Routes that act on a POST; a POST anywhere else is answered 404 or 405 by its route. */
export function takesPost(path: string): boolean {
  return path === '/v1/txn' || path.startsWith('/v1/members') || path === '/v1/leader/transfer' || path.startsWith('/v1/internal/') || isLeasePath(path);
}

export function requireJsonContentType(req: { readonly headers: IncomingMessage['headers']; discard(): void }): void {
  const type = req.headers['content-type'];
  // A browser can send a POST without a CORS preflight only as a "simple" request, which cannot
  // carry application/json: requiring it keeps every web page from writing through a victim.
  if (typeof type !== 'string' || !/^application\/json\s*(;.*)?$/i.test(type)) {
    req.discard();
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'a POST must carry Content-Type: application/json');
  }
}

// Only writes and linearizable/lease reads must reach the leader; everything else answers here.
/** A read or write of keys: GET, PUT or DELETE under /v1/kv, or a transaction. */
export function isKvRequest(r: ParsedRequest): boolean {
  if (r.path === '/v1/txn') return r.method === 'POST';
  return r.path.startsWith('/v1/kv') && (r.method === 'GET' || r.method === 'PUT' || r.method === 'DELETE');
}

export function requiresLeader(r: ParsedRequest): boolean {
  const p = r.path;
  if (p.startsWith('/v1/kv')) {
    if (r.method === 'GET') return (r.query.get('consistency') ?? 'linearizable') !== 'stale';
    return r.method === 'PUT' || r.method === 'DELETE';
  }
  if (p === '/v1/txn') return r.method === 'POST';
  if (p.startsWith('/v1/members') || p === '/v1/leader/transfer') return r.method !== 'GET';
  // The leader alone holds lease deadlines and acknowledges keepalives (leases.ts).
  if (isLeasePath(p)) return true;
  return false;
}

/** /v1/leases and everything under it (lease-routes.ts). */
export function isLeasePath(path: string): boolean {
  return path === '/v1/leases' || path.startsWith('/v1/leases/');
}

export function routeName(url: string): string {
  const path = url.split('?')[0]!;
  if (path.startsWith('/v1/kv/')) return '/v1/kv/{key}';
  if (/^\/v1\/members\/[^/]+/.test(path)) return '/v1/members/{id}';
  if (path.startsWith('/v1/leases/')) return path.endsWith('/keepalive') ? '/v1/leases/{id}/keepalive' : '/v1/leases/{id}';
  return ['/v1/kv', '/v1/txn', '/v1/watch', '/v1/leases', '/v1/status', '/v1/members', '/v1/leader/transfer', '/v1/configuration', '/healthz', '/livez', '/readyz', '/metrics'].includes(path) ? path : 'other';
}

export function consistencyParam(query: URLSearchParams): Consistency {
  const v = query.get('consistency') ?? 'linearizable';
  if (!(CONSISTENCY_LEVELS as readonly string[]).includes(v)) throw new ApiError('BAD_REQUEST', `consistency must be one of ${CONSISTENCY_LEVELS.join(', ')}`);
  return v as Consistency;
}

export function conditions(query: URLSearchParams, allowExist: boolean): WriteConditions {
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

export function idempotencyKey(r: ParsedRequest): string | undefined {
  const v = r.headers['idempotency-key'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[^/\s]{1,128}\/\d{1,15}$/.test(v)) {
    throw new ApiError('BAD_REQUEST', 'Idempotency-Key must be <client>/<seq> (seq a whole number)');
  }
  return v;
}
