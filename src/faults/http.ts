// One HTTP exchange for the workloads and the nemesis: node:http on a keep-alive agent (fresh
// connections per op would exhaust ephemeral ports over a long run), a hard bound on the whole
// exchange, and errors that say whether the request can have reached the server.
import { Agent, request as httpRequest } from 'node:http';

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

const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export interface ExchangeOptions {
  readonly method?: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly body?: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** @default 2000 */
  readonly timeoutMs?: number;
  readonly agent?: Agent;
}

export function newAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 4, keepAliveMsecs: 1000 });
}

/** `base` is http://HOST:PORT, `path` includes the query. */
export function exchange(base: string, path: string, options: ExchangeOptions = {}): Promise<Reply> {
  const url = new URL(base);
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? Buffer.from(options.body) : Buffer.from(options.body);
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
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
    const req = httpRequest(
      { host: url.hostname, port: Number(url.port), path, method: options.method ?? 'GET', headers, agent: options.agent ?? false },
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
