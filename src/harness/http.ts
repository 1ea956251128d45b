// One HTTP exchange for the harness (node probes) and the fault suite's workloads and nemesis:
// node:http (node:https for a secure cluster), on a keep-alive agent (fresh connections per op
// would exhaust ephemeral ports over a long run) or a fresh connection, a hard bound on the whole
// exchange, and errors that say whether the request can have reached the server.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface Reply {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** `sent: false` proves the server never saw the request (refused connection, no route). */
export class ExchangeError extends Error {
  constructor(
    message: string,
    readonly sent: boolean,
  ) {
    super(message);
    this.name = 'ExchangeError';
  }
}

// Only failures to open the TCP connection prove the request never left. A TLS handshake that
// fails or hangs is NOT among them: Node may put the request on the wire in the same flight as
// the client's Finished, before this side hears of the handshake's end, so such an error stays
// "may have been sent" (unknown), never "refused".
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/**
 * How the harness reaches a secure cluster: https endpoints verified against `ca`, and
 * `Authorization: Bearer <token>` on every request.
 */
export interface ClientSecurity {
  /** The PEM certificate of the CA that signed every node's certificate. */
  readonly ca: Buffer;
  readonly token: string;
}

export type Agent = HttpAgent;

export interface ExchangeOptions {
  /** @default 'GET' */
  readonly method?: string;
  readonly body?: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** @default 2000 */
  readonly timeoutMs?: number;
  /** From newAgent() with the same security; none: a fresh connection for this exchange. */
  readonly agent?: Agent;
  /** A secure run's CA and token; null or absent: plain http without a token. */
  readonly security?: ClientSecurity | null;
}

/** A keep-alive agent: an https one that trusts `security.ca` when given, else plain http. */
export function newAgent(security: ClientSecurity | null = null): Agent {
  const options = { keepAlive: true, maxSockets: 4, keepAliveMsecs: 1000 };
  return security === null ? new HttpAgent(options) : new HttpsAgent({ ...options, ca: security.ca });
}

/** `base` is http(s)://HOST:PORT, `path` includes the query. */
export function exchange(base: string, path: string, options: ExchangeOptions = {}): Promise<Reply> {
  const url = new URL(base);
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? Buffer.from(options.body) : Buffer.from(options.body);
  const security = options.security ?? null;
  const headers: Record<string, string> = { ...(security !== null ? { authorization: `Bearer ${security.token}` } : {}), ...(options.headers ?? {}) };
  if (body !== undefined) headers['content-length'] = String(body.length);
  const timeoutMs = options.timeoutMs ?? 2000;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: ExchangeError | null, reply?: Reply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) reject(err);
      else resolve(reply as Reply);
    };
    const isHttps = url.protocol === 'https:';
    const request = isHttps ? httpsRequest : httpRequest;
    // The CA goes on the request too: with `agent: false` there is no agent to carry it.
    const tls = isHttps && security !== null ? { ca: security.ca } : {};
    const req = request(
      { host: url.hostname, port: Number(url.port), path, method: options.method ?? 'GET', headers, agent: options.agent ?? false, ...tls },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish(new ExchangeError(e.message, true)));
        res.on('end', () => finish(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      },
    );
    const timer = setTimeout(() => {
      finish(new ExchangeError(`no answer within ${timeoutMs} ms`, true));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish(new ExchangeError(`${e.code ?? ''} ${e.message}`.trim(), !NOT_SENT.has(e.code ?? ''))));
    req.end(body);
  });
}

/** exchange(), with null for any failure: for probes that only care whether a node answers. */
export async function probe(base: string, path: string, options: ExchangeOptions = {}): Promise<Reply | null> {
  try {
    return await exchange(base, path, options);
  } catch {
    return null;
  }
}

export function errorCode(reply: Reply): string {
  try {
    const code = (JSON.parse(reply.body.toString('utf8')) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : `HTTP_${reply.status}`;
  } catch {
    return `HTTP_${reply.status}`;
  }
}

/** Parses Prometheus text: series (`name` or `name{labels}` as written) to value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}
