// The client's HTTP transport on node:http and node:https. Node 20's global fetch cannot be given
// a private CA or a client certificate, and a raftkv cluster with TLS usually has both, so the
// client speaks HTTP through its own keep-alive agents instead. It keeps fetch's shape (the seam
// the Requester and the tests use) and adds one thing fetch cannot say: whether a failed request
// ever left this process, so a write that never reached a node is not reported as "outcome
// unknown" (see http.ts).
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';

/** What the Requester needs of one HTTP exchange; `globalThis.fetch` fits it too. */
export type FetchLike = (url: string, init: FetchLikeInit) => Promise<FetchLikeResponse>;

export interface FetchLikeInit {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
  readonly signal: AbortSignal;
}

/** What the client reads of an answer's headers; fetch's Headers fits. */
export interface ResponseHeaders {
  get(name: string): string | null;
  delete(name: string): void;
}

export interface FetchLikeResponse {
  readonly status: number;
  readonly headers: ResponseHeaders;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface TlsTrust {
  /** PEM certificate(s) of the CA that signed the nodes' certificates; replaces Node's default roots. */
  readonly ca?: string | Buffer;
  /** PEM client certificate, for nodes that require one (`--client-cert-auth`). Needs `key`. */
  readonly cert?: string | Buffer;
  /** PEM private key of `cert`. */
  readonly key?: string | Buffer;
}

/** The code of an attempt abandoned before its connection (TCP, and TLS for https) was ready. */
export const CONNECT_TIMEOUT = 'CONNECT_TIMEOUT';

/**
 * Marks an error that happened before the request could be written: no byte of it reached a
 * server, so it cannot have been applied.
 */
const NOT_SENT = Symbol('raftkv.requestNotSent');

export function isMarkedNotSent(err: unknown): boolean {
  return err !== null && typeof err === 'object' && (err as { [NOT_SENT]?: boolean })[NOT_SENT] === true;
}

export function markNotSent<T>(err: T): T {
  if (err !== null && typeof err === 'object') Object.defineProperty(err, NOT_SENT, { value: true });
  return err;
}

/**
 * Idle keep-alive sockets are closed after this long: below Node's server default (5 s), so the
 * client does not send on a connection the server is closing at that moment, which would turn a
 * clean request into one whose outcome is unknown. undici, the global fetch, uses the same 4 s.
 */
const IDLE_SOCKET_MS = 4_000;

/** Checks the TLS options at once, so a bad PEM is a clear error at construction, not at the first request. */
export function checkTlsTrust(tls: TlsTrust): void {
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new TypeError('cert and key go together: give both or neither');
  for (const [name, value] of [['ca', tls.ca], ['cert', tls.cert], ['key', tls.key]] as const) {
    if (value === undefined) continue;
    try {
      // OpenSSL skips a CA that is not PEM without a word, and would then trust nothing at all.
      if (name === 'ca' && !String(value).includes('-----BEGIN CERTIFICATE-----')) throw new Error('no "BEGIN CERTIFICATE" block');
      if (name === 'ca') new X509Certificate(value);
      createSecureContext(name === 'ca' ? { ca: value } : name === 'cert' ? { cert: value, key: tls.key! } : { key: value });
    } catch (err) {
      throw new TypeError(`the ${name} option is not a usable PEM ${name === 'key' ? 'private key' : 'certificate'}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

export class NodeHttpTransport {
  private readonly httpAgent = new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  private readonly httpsAgent: HttpsAgent;

  constructor(tls: TlsTrust = {}) {
    checkTlsTrust(tls);
    this.httpsAgent = new HttpsAgent({
      keepAlive: true,
      timeout: IDLE_SOCKET_MS,
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key! } : {}),
    });
  }

  readonly fetch: FetchLike = (url, init) => {
    const target = new URL(url);
    const isTls = target.protocol === 'https:';
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
    return new Promise<FetchLikeResponse>((resolve, reject) => {
      const { signal } = init;
      if (signal.aborted) {
        reject(markNotSent(signal.reason));
        return;
      }
      // Until the connection is ready (for https: the handshake done), nothing has been written.
      let isConnected = false;
      let isSettled = false;
      const fail = (err: unknown): void => {
        if (isSettled) return;
        isSettled = true;
        signal.removeEventListener('abort', onAbort);
        reject(isConnected ? err : markNotSent(err));
      };
      const onAbort = (): void => {
        const reason: unknown = signal.reason;
        const err = isConnected
          ? reason
          : Object.assign(new Error('the connection was not ready before the attempt gave up'), { code: CONNECT_TIMEOUT, cause: reason });
        fail(err);
        req.destroy();
      };
      const headers: Record<string, string> = { ...init.headers };
      if (body !== undefined) headers['content-length'] = String(body.byteLength);
      const options = { method: init.method, headers, agent: isTls ? this.httpsAgent : this.httpAgent };
      const req: ClientRequest = isTls ? httpsRequest(target, options) : httpRequest(target, options);
      req.on('socket', (socket: Socket) => {
        if (req.reusedSocket) {
          isConnected = true;
          return;
        }
        socket.once(isTls ? 'secureConnect' : 'connect', () => {
          isConnected = true;
        });
      });
      req.on('error', fail);
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('the connection closed in the middle of the answer'), { code: 'ECONNRESET' }));
        });
        res.on('end', () => {
          if (isSettled) return;
          isSettled = true;
          signal.removeEventListener('abort', onAbort);
          const bytes = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: new RawHeaders(res.rawHeaders),
            arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
          });
        });
      });
      signal.addEventListener('abort', onAbort, { once: true });
      req.end(body);
    });
  };

  /** Closes the idle keep-alive connections; requests after this open new ones. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/**
 * An answer's headers over node:http's raw list, looked up when read: the client reads one or
 * two of them, and building fetch's Headers for each answer cost ~2 µs. Names compare without
 * case; a repeated header reads as its values joined by ", ", as in Headers.
 */
export class RawHeaders implements ResponseHeaders {
  private readonly deleted = new Set<string>();

  constructor(private readonly raw: readonly string[]) {}

  get(name: string): string | null {
    const wanted = name.toLowerCase();
    if (this.deleted.has(wanted)) return null;
    let value: string | null = null;
    for (let i = 0; i + 1 < this.raw.length; i += 2) {
      if (this.raw[i]!.length === wanted.length && this.raw[i]!.toLowerCase() === wanted) {
        value = value === null ? this.raw[i + 1]! : `${value}, ${this.raw[i + 1]!}`;
      }
    }
    return value;
  }

  delete(name: string): void {
    this.deleted.add(name.toLowerCase());
  }
}
