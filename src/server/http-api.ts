// The HTTP API of ../shared/API.md (mirrored in docs/api.md) on node:http or node:https: routing,
// strict input validation (unknown parameters, bad JSON, oversize bodies are 4xx with a JSON
// error and change nothing), authentication and permissions (auth.ts, access.ts), forwarding to
// the leader with the authenticated principal, deadlines, bounded replies, and the limits that
// keep a hostile or careless client from taking the node down: slow headers and bodies are cut in
// seconds, idle connections closed, connections capped, error logs rate-limited, and no throw
// in a reply path can escape to the process.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { recordToJson } from '../kv/index.js';
import { isTracing, trace } from '../node/trace.js';
import { UI_EVENTS_PATH } from './ui-hub.js';
import { attachMux, type MuxHub } from './mux-server.js';
import { TurnBudget } from './turn-budget.js';
import { authenticate, authorize } from './access.js';
import type { Authenticator, Principal } from './auth.js';
import { ApiError } from './errors.js';
import {
  allowParams,
  bodyTooLarge,
  conditions,
  consistencyParam,
  decodeKey,
  errorReply,
  expectMethod,
  idempotencyKey,
  intParam,
  leaseParam,
  revisionHeader,
  revisionParam,
  listingReply,
  parseJson,
  parseTarget,
  rateLimitedLogger,
  readBody,
  replyTooLarge,
  requestDeadlineMs,
  requireJsonContentType,
  isKvRequest,
  requiresLeader,
  routeName,
  serialize,
  takesPost,
  type Reply,
} from './http-util.js';
import type { ForwardedRequest, ForwardedResponse, HttpTlsOptions, KvApi, ParsedRequest } from './api-types.js';
import type { Logger } from './logger.js';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_SECONDS, ReadCounter, type Registry } from './metrics.js';

export type { Reply } from './http-util.js';
export { allowParams, intParam, parseJson, parseTarget, errorReply } from './http-util.js';

export { CONSISTENCY_LEVELS } from './api-types.js';
export type { Consistency, ParsedRequest, ForwardedRequest, ForwardedResponse, HttpTlsOptions, KvApi, KvRecordView, MemberView, ReadyView, StatusView, WriteConditions } from './api-types.js';

export interface ApiServerOptions {
  /** This node's id (answers carry it from the first request on). */
  readonly nodeId: string;
  /** The node behind the API; absent until `attach()`, and until then every request but /livez answers 503 STARTING. */
  readonly api?: KvApi;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Sends a request to the leader and returns its answer; absent means "answer 503". */
  readonly forward?: (req: ForwardedRequest) => Promise<ForwardedResponse>;
  /** Bearer-token authentication and permissions; absent: every request is allowed. */
  readonly auth?: Authenticator;
  /** HTTPS instead of HTTP. */
  readonly tls?: HttpTlsOptions;
  /** Origins a browser page may call from (CORS); none by default. */
  readonly corsOrigins?: readonly string[];
  /** @default 5000 */
  readonly requestTimeoutMs?: number;
  /** @default 1 MiB + 64 KiB */
  readonly maxBodyBytes?: number;
  /** @default 64 MiB — no reply is larger (API.md "Health and limits") */
  readonly maxResponseBytes?: number;
  /** @default 10000 — requests in progress on this node; more get 503 */
  readonly maxPendingRequests?: number;
  /** @default 1024 — open client connections; more are refused */
  readonly maxConnections?: number;
  /** @default 10000 — a request's headers must arrive within this */
  readonly headersTimeoutMs?: number;
  /** @default 30000 — a whole request (headers and body) must arrive within this */
  readonly bodyTimeoutMs?: number;
  /** @default 5000 — an idle keep-alive connection is closed after this */
  readonly keepAliveTimeoutMs?: number;
  /** Extra routes (membership, leader transfer) mounted by later layers. */
  readonly extraRoutes?: (req: ParsedRequest) => Promise<Reply> | null;
  /**
   * Judges a request the extra routes serve on the leader, from the request alone (throws its
   * 4xx), before a follower forwards it whole: malformed is refused as the leader would refuse it,
   * whoever leads, and only a valid request waits for a leader.
   */
  readonly checkForwarded?: (req: ParsedRequest) => void;
  /**
   * The dashboard's files (ui-static.ts): answered before authentication, since a browser's
   * navigation cannot carry a token; null for any other path.
   */
  readonly uiFiles?: (method: string, path: string, ifNoneMatch: string | undefined) => Reply | null;
  /** Told of every answered request (the dashboard's rates and latencies). */
  readonly onRequestDone?: (method: string, route: string, status: number, ms: number) => void;
  /** Routes only peers may call (over the authenticated peer channel), keyed by path. */
  readonly peerRoutes?: Readonly<Record<string, (req: ParsedRequest, from: string) => Promise<Reply>>>;
}


/** One request as handle() reads it, from node:http or from raftkv-mux (mux-server.ts). */
interface RequestParts {
  readonly method: string;
  /** Path and query, as in the request line. */
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  /** The body; BODY_TOO_LARGE past maxBodyBytes. */
  readBody(): Promise<Uint8Array>;
  /** The body will not be read: let it go. */
  discard(): void;
}

/** A request of raftkv-mux (src/client/mux-frames.ts): HTTP's parts without node:http. */
export interface PlainRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** What a PlainRequest is answered with: what the same HTTP request would get. */
export interface PlainAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/** Answers that stream (watch, backups, the dashboard's events, election observers) go over HTTP only. */
function streamsItsAnswer(path: string): boolean {
  return path === '/v1/watch' || path === '/v1/snapshot' || path === UI_EVENTS_PATH || path.endsWith('/observe');
}

export interface Api {
  readonly server: Server;
  /**
   * Serves a request that came without node:http (raftkv-mux): authenticated, checked, forwarded
   * and routed as the same HTTP request, within the same limits and counted in the same metrics.
   * Never rejects.
   */
  serve(req: PlainRequest): Promise<PlainAnswer>;
  /** The raftkv-mux connections upgraded from `server`, which its own close() does not close. */
  readonly mux: MuxHub;
  /** The node is up: requests reach `api` from now on. */
  attach(api: KvApi): void;
  /** Answers a request that the peer `from` forwarded to this node over the peer channel. */
  answerForwarded(req: ForwardedRequest, from: string): Promise<ForwardedResponse>;
}

/** What a raftkv-mux request frame may hold beyond the largest body: its path, headers and fixed fields. */
const MUX_HEAD_ALLOWANCE_BYTES = 64 * 1024;
const HEALTH_PATHS = new Set(['/livez', '/readyz', '/healthz']);
/** Answers a connection may have waiting to be sent (pipelined requests) before it is cut. */
const MAX_UNSENT_ANSWERS = 256;
/** Bytes of answers a connection may have waiting to be sent before it is cut (a client not reading). */
const MAX_UNSENT_ANSWER_BYTES = 16 << 20;
/**
 * HTTP requests the client connections may hand one turn of the event loop before the others wait
 * for the next (turn-budget.ts): well above what 256 closed-loop clients send at once, well below
 * what a few 64 KiB reads of pipelined requests hold.
 */
const REQUESTS_PER_TURN = 512;
const FORWARDED_HEADERS = ['content-type', 'idempotency-key', 'request-timeout'] as const;
/** A header value Node accepts (no CR, LF or other control characters). */
const SAFE_HEADER_VALUE = /^[\t\x20-\x7e]*$/;

export function createApiServer(options: ApiServerOptions): Api {
  const { registry, auth, nodeId } = options;
  let attached: KvApi | null = options.api ?? null;
  const apiOf = (): KvApi => {
    if (attached === null) throw new ApiError('STARTING', `${nodeId} is starting`);
    return attached;
  };
  // A flood of bad requests costs counters, not the disk: error lines are capped per second.
  const logger = rateLimitedLogger(options.logger, 20);
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const maxBody = options.maxBodyBytes ?? (1 << 20) + (64 << 10);
  const maxResponse = options.maxResponseBytes ?? 64 << 20;
  const maxPending = options.maxPendingRequests ?? 10_000;
  const corsOrigins = new Set(options.corsOrigins ?? []);
  const requests = registry.register(new Counter('raftkv_http_requests_total', 'HTTP requests by route and status'));
  const latency = registry.register(new Histogram('raftkv_http_request_duration_seconds', 'HTTP request latency by route', LATENCY_BUCKETS_SECONDS));
  const refused = registry.register(new Counter('raftkv_http_refused_total', 'HTTP requests refused before routing, by reason'));
  let pending = 0;
  /** Per connection: answers not yet sent (pipelined behind others) and the bytes they hold. */
  const unsentAnswers = new WeakMap<Socket, { count: number; bytes: number }>();

  const turnBudget = new TurnBudget(REQUESTS_PER_TURN);
  registry.register(new ReadCounter('raftkv_http_turns_throttled_total', `Event-loop turns in which HTTP clients sent more than ${REQUESTS_PER_TURN} requests, and the other connections waited for the next turn`, () => turnBudget.exhaustedTurns));
  const cutPipelining = (socket: Socket): void => {
    // The rest of the read that went past the bound comes here too: the connection is cut once.
    if (socket.destroyed) return;
    // On close node aborts each request it parsed and nobody answered (the rest of one read, up
    // to ~1,600), each with an Error whose stack it captures and formats: ~10 µs apiece, a third
    // of what such a read costs. Those stacks say nothing (the abort is ours), so the close runs
    // without them; the listeners on either side of node's own restore the limit in the same emit.
    let limit = Error.stackTraceLimit;
    socket.prependListener('close', () => {
      limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
    });
    socket.on('close', () => (Error.stackTraceLimit = limit));
    socket.destroy();
  };

  /** Counts an answered request, over HTTP or raftkv-mux, in the metrics and for the dashboard. */
  const answered = (method: string, route: string, status: number, started: number): void => {
    requests.inc({ route, status: String(status) });
    const ms = performance.now() - started;
    latency.observe(ms / 1000, { route });
    options.onRequestDone?.(method, route, status, ms);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    turnBudget.spend();
    // A client may pipeline requests on one connection and never read the answers: each answer
    // waits in memory for the ones before it. Past a few hundred unsent answers (or 16 MiB of them) it is not a client
    // that will ever read them; the connection goes, with everything it queued. What node parsed
    // after the cut (the rest of one read, up to ~1,600 requests) costs as little as it can.
    const socket = req.socket;
    const unsent = unsentAnswers.get(socket) ?? { count: 0, bytes: 0 };
    unsent.count++;
    if (unsent.count > MAX_UNSENT_ANSWERS || unsent.bytes > MAX_UNSENT_ANSWER_BYTES) {
      refused.inc({ reason: 'pipelined' });
      cutPipelining(socket);
      return;
    }
    const started = performance.now();
    if (isTracing) trace('http-in', -1);
    // Errors on either stream (a client resetting mid-request) are answered by 'close', not thrown.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const route = routeName(req.url ?? '/');
    unsentAnswers.set(socket, unsent);
    res.once('close', () => unsent.count--);
    if (pending >= maxPending) {
      send(req, res, errorReply(new ApiError('OVERLOADED', `more than ${maxPending} requests in progress`)));
      requests.inc({ route, status: '503' });
      return;
    }
    pending++;
    void handle({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, readBody: () => readBody(req, maxBody), discard: () => req.resume() })
      .catch((err: unknown) => errorReply(err, logger))
      .then((reply) => {
        answered(req.method ?? 'GET', route, send(req, res, reply), started);
      })
      .catch((err: unknown) => logger.error('reply failed', { error: String(err) }))
      .finally(() => pending--);
  };

  const serverOptions: ServerOptions = {
    // Node checks headersTimeout and requestTimeout only this often (30 s by default): slow
    // headers and bodies must be cut in seconds, not minutes.
    connectionsCheckingInterval: 1000,
    // node:http requires headersTimeout <= requestTimeout.
    headersTimeout: Math.min(options.headersTimeoutMs ?? 10_000, options.bodyTimeoutMs ?? 30_000),
    requestTimeout: options.bodyTimeoutMs ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
  };
  const tls = options.tls;
  const server: Server = tls
    ? (createHttpsServer(
        {
          ...serverOptions,
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca ? { ca: tls.ca } : {}),
          requestCert: tls.requireClientCert,
          rejectUnauthorized: tls.requireClientCert,
          handshakeTimeout: options.headersTimeoutMs ?? 10_000,
        },
        onRequest,
      ) as unknown as Server)
    : createHttpServer(serverOptions, onRequest);
  server.maxConnections = options.maxConnections ?? 1024;
  // A TLS server's requests arrive on the TLS socket, whose handle the parser reads. A connection
  // upgraded to raftkv-mux stays tracked: its frames spend the same budget.
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => turnBudget.track(socket));
  // A connection that says nothing at all (no request, or a request waiting on nothing) goes; the
  // longest legitimate wait is a request's own deadline (at most a minute).
  server.timeout = 70_000;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    refused.inc({ reason: err.code ?? 'client-error' });
    if (socket.writable && !socket.writableEnded) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('tlsClientError', () => refused.inc({ reason: 'tls' }));

  async function handle(req: RequestParts): Promise<Reply> {
    const target = parseTarget(req.url);
    const method = req.method;
    if (HEALTH_PATHS.has(target.path)) {
      req.discard();
      return health(target.path, method, target.query, Date.now() + requestDeadlineMs(req.headers['request-timeout'], timeoutMs));
    }
    const ui = options.uiFiles?.(method, target.path, req.headers['if-none-match']) ?? null;
    if (ui !== null) {
      req.discard();
      return ui;
    }
    const origin = req.headers.origin;
    if (method === 'OPTIONS') {
      req.discard();
      return preflight(origin);
    }
    let principal: Principal | null = null;
    if (auth !== undefined) {
      try {
        principal = authenticate(auth, req.headers.authorization);
      } catch (err) {
        refused.inc({ reason: 'unauthenticated' });
        req.discard();
        throw err;
      }
    }
    if (method === 'POST' && takesPost(target.path)) requireJsonContentType(req);
    const body = await req.readBody();
    if (isTracing) trace('http-body', -1);
    const parsed: ParsedRequest = {
      method,
      path: target.path,
      query: target.query,
      headers: req.headers,
      body,
      deadline: Date.now() + requestDeadlineMs(req.headers['request-timeout'], timeoutMs),
      principal,
    };
    if (principal !== null) checkPermissions(principal, parsed);
    // A follower serves key reads and writes itself (proposals.ts, KvService.readBarrier); the
    // rest that needs the leader goes there whole.
    if (requiresLeader(parsed) && !apiOf().isLeader() && !(isKvRequest(parsed) && apiOf().servesKv())) {
      options.checkForwarded?.(parsed);
      if (options.forward === undefined) throw new ApiError('NO_LEADER', 'not the leader');
      const headers: Record<string, string> = {};
      for (const h of FORWARDED_HEADERS) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const out = await options.forward({ method, path: req.url, headers, body, ...(principal !== null ? { principal: principal.name } : {}) });
      const retryAfter = Number(out.headers['retry-after']);
      const revision = out.headers['raftkv-revision'];
      return {
        status: out.status,
        bytes: out.body,
        contentType: out.headers['content-type'] ?? 'application/octet-stream',
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfter } : {}),
        ...(revision !== undefined && /^[0-9]{1,16}$/.test(revision) ? { headers: { 'raftkv-revision': revision } } : {}),
      };
    }
    return route(parsed);
  }

  function checkPermissions(principal: Principal, r: ParsedRequest): void {
    try {
      authorize(principal, r);
    } catch (err) {
      refused.inc({ reason: 'permission-denied' });
      throw err;
    }
  }

  async function answerForwarded(req: ForwardedRequest, from: string): Promise<ForwardedResponse> {
    let reply: Reply;
    try {
      const url = parseTarget(req.path);
      const peerRoute = options.peerRoutes?.[url.path];
      let principal: Principal | null = null;
      if (auth !== undefined && peerRoute === undefined) {
        // The follower authenticated the client; this node judges permissions by its own file.
        principal = req.principal === undefined ? null : auth.byName(req.principal);
        if (principal === null) throw new ApiError('UNAUTHENTICATED', `the forwarded principal ${JSON.stringify(req.principal ?? null)} is not known to ${apiOf().id}`);
      }
      const parsed: ParsedRequest = {
        method: req.method,
        path: url.path,
        query: url.query,
        headers: req.headers,
        body: req.body,
        deadline: Date.now() + requestDeadlineMs(req.headers['request-timeout'], timeoutMs),
        principal,
      };
      if (peerRoute !== undefined) {
        reply = await peerRoute(parsed, from);
      } else {
        if (principal !== null) checkPermissions(principal, parsed);
        // Forwarded once only: a node that is no longer the leader says so rather than bounce it.
        if (requiresLeader(parsed) && !apiOf().isLeader()) throw new ApiError('NO_LEADER', 'this node is no longer the leader');
        reply = await route(parsed);
      }
    } catch (err) {
      reply = errorReply(err, logger);
    }
    // A stream answers on the node that holds it; nothing streamed is ever forwarded (requiresLeader).
    if (reply.stream !== undefined) reply = errorReply(new ApiError('BAD_REQUEST', 'a streamed answer cannot be forwarded'));
    const headers: Record<string, string> = {};
    if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
    const revision = reply.headers?.['raftkv-revision'];
    if (revision !== undefined) headers['raftkv-revision'] = revision;
    if (reply.bytes !== undefined) {
      headers['content-type'] = reply.contentType ?? 'application/octet-stream';
      return { status: reply.status, headers, body: reply.bytes };
    }
    headers['content-type'] = 'application/json';
    const body = serialize(reply.json);
    if (body === null) return { status: 413, headers, body: Buffer.from(JSON.stringify(replyTooLarge().json)) };
    return { status: reply.status, headers, body };
  }

  async function health(path: string, method: string, query: URLSearchParams, deadline: number): Promise<Reply> {
    expectMethod(method, ['GET', 'HEAD']);
    allowParams(query, []);
    if (path === '/livez') return { status: 200, json: { live: true, id: nodeId, starting: attached === null } };
    // /healthz answers like /readyz: "healthy" with quorum lost would be a lie (issue 9).
    return { status: 200, json: await apiOf().ready(deadline) };
  }

  function preflight(origin: string | undefined): Reply {
    if (origin === undefined || !corsOrigins.has(origin)) {
      throw new ApiError('METHOD_NOT_ALLOWED', 'OPTIONS (a CORS preflight) is answered only for origins listed in --cors-origins');
    }
    return {
      status: 204,
      headers: {
        'access-control-allow-methods': 'GET, PUT, POST, DELETE',
        'access-control-allow-headers': 'authorization, content-type, idempotency-key, request-timeout, last-event-id',
        'access-control-max-age': '600',
      },
    };
  }

  async function route(r: ParsedRequest): Promise<Reply> {
    const { method, path } = r;
    if (path === '/metrics') {
      expectMethod(method, ['GET']);
      return { status: 200, bytes: new TextEncoder().encode(registry.render()), contentType: 'text/plain; version=0.0.4' };
    }
    if (path === '/v1/status') {
      expectMethod(method, ['GET']);
      allowParams(r.query, []);
      return { status: 200, json: apiOf().status() };
    }
    if (path === '/v1/members' && method === 'GET') {
      allowParams(r.query, []);
      return { status: 200, json: { members: apiOf().members() } };
    }
    if (path === '/v1/kv' || path === '/v1/kv/') {
      // PUT or DELETE of "/v1/kv/" names a key, and that key is empty.
      if (path === '/v1/kv/' && (method === 'PUT' || method === 'DELETE')) throw new ApiError('BAD_KEY', 'the key is empty');
      expectMethod(method, ['GET']);
      allowParams(r.query, ['prefix', 'limit', 'consistency', 'revision']);
      const prefix = r.query.get('prefix') ?? '';
      const limit = intParam(r.query, 'limit', 1000, 1, 10_000);
      const revision = revisionParam(r.query);
      await apiOf().readBarrier(consistencyParam(r.query), r.deadline);
      const { items, more } = apiOf().list(prefix, limit, maxResponse, revision);
      return listingReply(items, more, maxResponse, revisionHeader(apiOf().revision()));
    }
    if (path.startsWith('/v1/kv/')) return kvRoute(r, decodeKey(path.slice('/v1/kv/'.length)));
    if (path === '/v1/txn') {
      expectMethod(method, ['POST']);
      allowParams(r.query, []);
      const result = await apiOf().txn(parseJson(r.body), idempotencyKey(r), r.deadline, maxResponse, r.principal?.name);
      return { status: 200, json: result, headers: revisionHeader((result as { revision: number }).revision) };
    }
    const extra = options.extraRoutes?.(r);
    if (extra) return extra;
    throw new ApiError('NOT_FOUND', `no such endpoint: ${method} ${path.slice(0, 200)}`);
  }

  async function kvRoute(r: ParsedRequest, key: string): Promise<Reply> {
    apiOf().validateKey(key);
    switch (r.method) {
      case 'GET': {
        allowParams(r.query, ['consistency', 'raw', 'revision']);
        const revision = revisionParam(r.query);
        await apiOf().readBarrier(consistencyParam(r.query), r.deadline);
        const rec = apiOf().get(key, revision);
        const headers = revisionHeader(apiOf().revision());
        if (rec === null) throw new ApiError('NOT_FOUND', `key not found: ${key}`, { headers });
        if (r.query.has('raw')) return { status: 200, bytes: rec.value, headers };
        return { status: 200, json: recordToJson(rec), headers };
      }
      case 'PUT': {
        allowParams(r.query, ['prevValue', 'prevIndex', 'prevExist', 'lease']);
        apiOf().validateValue(r.body);
        const cond = conditions(r.query, true);
        const lease = r.query.get('lease');
        const result = await apiOf().put(key, r.body, lease === null ? cond : { ...cond, lease: leaseParam(lease) }, idempotencyKey(r), r.deadline, r.principal?.name);
        return { status: 200, json: result, headers: revisionHeader(result.revision) };
      }
      case 'DELETE': {
        allowParams(r.query, ['prevValue', 'prevIndex']);
        const result = await apiOf().delete(key, conditions(r.query, false), idempotencyKey(r), r.deadline, r.principal?.name);
        return { status: 200, json: result, headers: revisionHeader(result.revision) };
      }
      default:
        throw new ApiError('METHOD_NOT_ALLOWED', `${r.method} is not allowed on /v1/kv/{key}`);
    }
  }

  /** Writes `reply`; never throws. Returns the status actually sent. */
  function send(req: IncomingMessage, res: ServerResponse, reply: Reply): number {
    if (res.headersSent || res.destroyed) return reply.status;
    if (isTracing) trace('http-send', -1);
    const headers = answerHeaders(reply, req.headers.origin);
    if (reply.stream !== undefined) {
      try {
        reply.stream(res, headers);
      } catch (err) {
        logger.error('could not start a stream; connection closed', { error: String(err) });
        res.destroy();
      }
      return reply.status;
    }
    const { status, body } = answerBody(reply, headers);
    const unsent = unsentAnswers.get(req.socket);
    if (unsent !== undefined) {
      // Held until the answer is flushed; a client that reads nothing is cut past the bound.
      unsent.bytes += body.length;
      res.once('close', () => (unsent.bytes -= body.length));
      if (unsent.bytes > MAX_UNSENT_ANSWER_BYTES && unsent.count > 1) {
        refused.inc({ reason: 'pipelined' });
        req.socket.destroy();
        return status;
      }
    }
    try {
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      logger.error('could not write a reply; connection closed', { error: String(err) });
      res.destroy();
    }
    if (isTracing) trace('http-out', (reply.json as { index?: number } | undefined)?.index ?? -1);
    return status;
  }

  /** The headers every answer carries, and `reply`'s own. */
  function answerHeaders(reply: Reply, origin: string | undefined): Record<string, string> {
    const headers: Record<string, string> = { 'raftkv-node': nodeId };
    const clusterId = attached?.clusterId() ?? null;
    if (clusterId !== null) headers['raftkv-cluster-id'] = clusterId;
    const leader = attached?.leaderUrl() ?? null;
    // Addresses come from the replicated registry, which validates them; a value that would
    // split the header block is left out all the same rather than thrown out of writeHead.
    if (leader !== null && SAFE_HEADER_VALUE.test(leader)) headers['raftkv-leader'] = leader;
    if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
    if (origin !== undefined && corsOrigins.has(origin)) {
      headers['access-control-allow-origin'] = origin;
      headers['access-control-expose-headers'] = 'raftkv-leader, raftkv-node, raftkv-cluster-id, raftkv-revision, retry-after';
      headers['vary'] = 'Origin';
    }
    for (const [k, v] of Object.entries(reply.headers ?? {})) if (SAFE_HEADER_VALUE.test(v)) headers[k] = v;
    return headers;
  }

  /** The status and body `reply` is sent as (413 if it would be too large); sets content-type in `headers`. */
  function answerBody(reply: Reply, headers: Record<string, string>): { status: number; body: Uint8Array } {
    let status = reply.status;
    let body: Uint8Array;
    if (reply.bytes !== undefined) {
      headers['content-type'] = reply.contentType ?? 'application/octet-stream';
      body = reply.bytes;
    } else if (reply.json === undefined) {
      body = new Uint8Array(0);
    } else {
      headers['content-type'] = 'application/json';
      const encoded = serialize(reply.json);
      if (encoded === null || encoded.length > maxResponse) {
        const tooLarge = replyTooLarge();
        status = tooLarge.status;
        body = Buffer.from(JSON.stringify(tooLarge.json));
      } else {
        body = encoded;
      }
    }
    if (body.length > maxResponse) {
      const tooLarge = replyTooLarge();
      status = tooLarge.status;
      headers['content-type'] = 'application/json';
      body = Buffer.from(JSON.stringify(tooLarge.json));
    }
    return { status, body };
  }

  async function serve(req: PlainRequest): Promise<PlainAnswer> {
    if (isTracing) trace('http-in', -1);
    const started = performance.now();
    const route = routeName(req.url);
    let reply: Reply;
    if (streamsItsAnswer(parseTarget(req.url).path)) {
      reply = errorReply(new ApiError('BAD_REQUEST', `${req.url.split('?')[0]!.slice(0, 200)} streams its answer: ask it over HTTP, not raftkv-mux`));
    } else if (pending >= maxPending) {
      reply = errorReply(new ApiError('OVERLOADED', `more than ${maxPending} requests in progress`));
    } else {
      pending++;
      try {
        const body = req.body;
        reply = await handle({
          method: req.method,
          url: req.url,
          headers: req.headers,
          readBody: () => (body.length > maxBody ? Promise.reject(bodyTooLarge(maxBody)) : Promise.resolve(body)),
          discard: () => undefined,
        });
      } catch (err) {
        reply = errorReply(err, logger);
      } finally {
        pending--;
      }
      if (reply.stream !== undefined) {
        logger.error('a streamed answer reached raftkv-mux; refused', { url: req.url.slice(0, 200) });
        reply = errorReply(new ApiError('BAD_REQUEST', 'this answer streams: ask it over HTTP, not raftkv-mux'));
      }
    }
    const headers = answerHeaders(reply, req.headers['origin']);
    const answer = answerBody(reply, headers);
    answered(req.method, route, answer.status, started);
    if (isTracing) trace('http-out', (reply.json as { index?: number } | undefined)?.index ?? -1);
    return { status: answer.status, headers, body: req.method === 'HEAD' ? new Uint8Array(0) : answer.body };
  }

  const mux = attachMux(server, {
    nodeId,
    serve,
    maxFrameBytes: maxBody + MUX_HEAD_ALLOWANCE_BYTES,
    frameTimeoutMs: options.bodyTimeoutMs ?? 30_000,
    onRefused: (reason) => refused.inc({ reason }),
    onFrame: () => turnBudget.spend(),
    onError: (message, fields) => logger.error(message, fields),
  });

  registry.register(new Gauge('raftkv_mux_connections', 'raftkv-mux connections open (docs/mux.md)', () => mux.size));

  return {
    server,
    serve,
    mux,
    answerForwarded,
    attach: (api) => {
      attached = api;
    },
  };
}
