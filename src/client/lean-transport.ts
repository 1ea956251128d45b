// The client's HTTP/1.1 transport for plain http:// endpoints, on node:net: a pool of keep-alive
// connections per node, requests written in one writev, answers parsed here. node:http's client
// cost ~100 µs of CPU per request (ClientRequest, the agent, IncomingMessage, streams, events),
// as much as a raftkv node spends on a write; this costs a fraction of it. It speaks only what a
// client of a raftkv node needs: one request at a time per connection, answers with
// Content-Length or chunked bodies, keep-alive unless the node says `Connection: close`.
// https:// endpoints go to NodeHttpTransport (TLS, a private CA, client certificates).
// Like it, this tells whether a failed request ever left the process (see http.ts).
import { connect, type Socket } from 'node:net';
import { CONNECT_TIMEOUT, NodeHttpTransport, RawHeaders, markNotSent, type FetchLike, type FetchLikeResponse, type TlsTrust } from './node-transport.js';

/** An http:// URL's `HOST:PORT` and its path (with the query); `/` when it has none. */
export function splitHttpUrl(url: string): { origin: string; path: string } {
  const slash = url.indexOf('/', 7);
  return slash < 0 ? { origin: url.slice(7), path: '/' } : { origin: url.slice(7, slash), path: url.slice(slash) };
}

/** The host (IPv6 without its brackets) and port of `HOST:PORT`; null if it is not one. */
export function hostAndPort(origin: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(origin);
  if (m === null) return null;
  return { host: m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!, port: Number(m[2]) };
}

/** Idle connections are closed after this long: below the server's keep-alive timeout (as NodeHttpTransport). */
const IDLE_SOCKET_MS = 4_000;
/** Idle connections kept per node; more are closed when they come back. */
const MAX_IDLE_PER_ORIGIN = 256;
/** An answer's status line and headers may not exceed this (node:http's default is 16 KiB). */
const MAX_HEAD_BYTES = 16 * 1024;

const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');

class ProtocolError extends Error {
  readonly code = 'HPE_INVALID';
}

/** One exchange in flight on a connection. */
interface Exchange {
  readonly resolve: (r: FetchLikeResponse) => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/**
 * One keep-alive connection and the parser of the answer it is reading. States: 'head' (reading
 * the status line and headers), 'body' (Content-Length bytes), 'chunk-size' / 'chunk-data' /
 * 'chunk-end' / 'trailers' (chunked), then back to 'head' for the next exchange.
 */
class Connection {
  readonly socket: Socket;
  isConnected = false;
  isClosed = false;
  exchange: Exchange | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private state: 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' = 'head';
  private status = 0;
  private raw: string[] = [];
  private keepAlive = true;
  private remaining = 0;
  private body: Buffer[] = [];

  constructor(
    readonly origin: string,
    host: string,
    port: number,
    private readonly onIdle: (c: Connection) => void,
    private readonly onGone: (c: Connection) => void,
  ) {
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.once('connect', () => {
      this.isConnected = true;
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' })));
    this.socket.on('timeout', () => this.socket.destroy());
  }

  send(head: Buffer, body: Buffer | undefined, exchange: Exchange): void {
    this.exchange = exchange;
    this.socket.ref();
    this.socket.setTimeout(0);
    this.state = 'head';
    this.socket.cork();
    this.socket.write(head);
    if (body !== undefined && body.length > 0) this.socket.write(body);
    this.socket.uncork();
  }

  /** The connection failed or closed: settle the exchange in flight, if any, and leave the pool. */
  fail(err: unknown): void {
    if (!this.isClosed) {
      this.isClosed = true;
      this.socket.destroy();
      this.onGone(this);
    }
    const ex = this.exchange;
    if (ex === null) return;
    this.exchange = null;
    ex.signal.removeEventListener('abort', ex.onAbort);
    ex.reject(this.isConnected ? err : markNotSent(err));
  }

  private onData(chunk: Buffer): void {
    if (this.exchange === null) {
      // Bytes nobody asked for: the connection is out of step; drop it.
      this.fail(new ProtocolError('the node sent bytes with no request in flight'));
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    try {
      this.parse();
    } catch (err) {
      this.fail(err);
    }
  }

  private take(n: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }

  /** Index of CRLF (or CRLF CRLF) in the pending bytes, or -1. */
  private find(needle: Buffer): number {
    if (this.pending.length > 1) {
      this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
    }
    return this.pending.length === 0 ? -1 : this.pending[0]!.indexOf(needle);
  }

  private parse(): void {
    for (;;) {
      switch (this.state) {
        case 'head': {
          const end = this.find(CRLF_CRLF);
          if (end > MAX_HEAD_BYTES || (end < 0 && this.pendingBytes > MAX_HEAD_BYTES)) {
            throw new ProtocolError(`the answer's headers exceed ${MAX_HEAD_BYTES} bytes`);
          }
          if (end < 0) return;
          this.parseHead(this.take(end + 4).toString('latin1', 0, end));
          continue;
        }
        case 'body': {
          if (this.remaining > 0) {
            if (this.pendingBytes === 0) return;
            const n = Math.min(this.remaining, this.pendingBytes);
            this.body.push(this.take(n));
            this.remaining -= n;
            if (this.remaining > 0) return;
          }
          this.complete();
          return;
        }
        case 'chunk-size': {
          const end = this.find(CRLF);
          if (end < 0) {
            if (this.pendingBytes > 1024) throw new ProtocolError('a chunk size line is too long');
            return;
          }
          const line = this.take(end + 2).toString('latin1', 0, end);
          const size = parseInt(line.split(';')[0]!.trim(), 16);
          if (!Number.isSafeInteger(size) || size < 0) throw new ProtocolError(`bad chunk size "${line}"`);
          if (size === 0) {
            this.state = 'trailers';
          } else {
            this.remaining = size;
            this.state = 'chunk-data';
          }
          continue;
        }
        case 'chunk-data': {
          if (this.pendingBytes === 0) return;
          const n = Math.min(this.remaining, this.pendingBytes);
          this.body.push(this.take(n));
          this.remaining -= n;
          if (this.remaining > 0) return;
          this.state = 'chunk-end';
          continue;
        }
        case 'chunk-end': {
          if (this.pendingBytes < 2) return;
          const crlf = this.take(2);
          if (crlf[0] !== 0x0d || crlf[1] !== 0x0a) throw new ProtocolError('a chunk does not end with CRLF');
          this.state = 'chunk-size';
          continue;
        }
        case 'trailers': {
          const end = this.find(CRLF);
          if (end < 0) return;
          this.take(end + 2);
          if (end === 0) {
            this.complete();
            return;
          }
          continue;
        }
      }
    }
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    const statusLine = lines[0]!;
    const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(statusLine);
    if (m === null) throw new ProtocolError(`not an HTTP/1.x answer: "${statusLine.slice(0, 64)}"`);
    this.status = Number(m[2]);
    this.keepAlive = m[1] === '1';
    const raw: string[] = [];
    let length = -1;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ProtocolError(`a malformed header line: "${line.slice(0, 64)}"`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      raw.push(name, value);
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!/^\d+$/.test(value) || (length >= 0 && Number(value) !== length)) throw new ProtocolError(`a bad Content-Length: "${value}"`);
        length = Number(value);
      } else if (lower === 'transfer-encoding') {
        chunked = value.toLowerCase().split(',').map((s) => s.trim()).includes('chunked');
      } else if (lower === 'connection') {
        const tokens = value.toLowerCase().split(',').map((s) => s.trim());
        if (tokens.includes('close')) this.keepAlive = false;
        else if (tokens.includes('keep-alive')) this.keepAlive = true;
      }
    }
    this.raw = raw;
    this.body = [];
    if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) {
      if (this.status >= 100 && this.status < 200) return; // an interim answer: the real one follows
      this.remaining = 0;
      this.state = 'body';
    } else if (chunked) {
      this.state = 'chunk-size';
    } else if (length >= 0) {
      this.remaining = length;
      this.state = 'body';
    } else {
      // No length: the body runs to the end of the connection. raftkv never answers so.
      throw new ProtocolError('an answer with neither Content-Length nor chunked encoding');
    }
  }

  private complete(): void {
    const ex = this.exchange!;
    this.exchange = null;
    this.state = 'head';
    ex.signal.removeEventListener('abort', ex.onAbort);
    const bytes = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body);
    this.body = [];
    const status = this.status;
    const headers = new RawHeaders(this.raw);
    if (this.pendingBytes > 0 || !this.keepAlive) {
      // Bytes past the answer, or the node closes: this connection is done.
      this.isClosed = true;
      this.socket.destroy();
      this.onGone(this);
    } else {
      this.socket.setTimeout(IDLE_SOCKET_MS);
      // An idle connection never keeps the process alive (close() is optional, docs/client.md).
      this.socket.unref();
      this.onIdle(this);
    }
    ex.resolve({
      status,
      headers,
      arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    });
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class LeanHttpTransport {
  private readonly idle = new Map<string, Connection[]>();
  private readonly all = new Set<Connection>();
  private readonly tlsTransport: NodeHttpTransport;

  constructor(tls: TlsTrust = {}) {
    this.tlsTransport = new NodeHttpTransport(tls);
  }

  readonly fetch: FetchLike = (url, init) => {
    if (!url.startsWith('http://')) return this.tlsTransport.fetch(url, init);
    const { origin, path } = splitHttpUrl(url);
    const { signal } = init;
    if (signal.aborted) return Promise.reject(markNotSent(signal.reason));
    // What node:http refuses too: a CR, LF or space where it would end the request line or a
    // header early (request smuggling), so the bytes written are exactly the request meant.
    if (/[\s]/.test(init.method + path)) return Promise.reject(markNotSent(new TypeError('the request path holds whitespace')));
    let head = `${init.method} ${path} HTTP/1.1\r\nhost: ${origin}\r\n`;
    for (const name in init.headers) {
      const value = init.headers[name]!;
      if (!HEADER_NAME.test(name) || /[\r\n\0]/.test(value)) return Promise.reject(markNotSent(new TypeError(`the header "${name}" has a character a header may not hold`)));
      head += `${name}: ${value}\r\n`;
    }
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength);
    if (body !== undefined || init.method === 'POST' || init.method === 'PUT') head += `content-length: ${body?.length ?? 0}\r\n`;
    head += '\r\n';
    const conn = this.connectionFor(origin);
    if (conn === null) return Promise.reject(markNotSent(new TypeError(`not an endpoint: "${url}"`)));
    return new Promise<FetchLikeResponse>((resolve, reject) => {
      const onAbort = (): void => {
        const reason: unknown = signal.reason;
        conn.fail(
          conn.isConnected ? reason : Object.assign(new Error('the connection was not ready before the attempt gave up'), { code: CONNECT_TIMEOUT, cause: reason }),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      conn.send(Buffer.from(head, 'latin1'), body, { resolve, reject, signal, onAbort });
    });
  };

  /** An idle connection to `origin`, or a new one; null if `origin` is not HOST:PORT. */
  private connectionFor(origin: string): Connection | null {
    const pool = this.idle.get(origin);
    while (pool !== undefined && pool.length > 0) {
      const reused = pool.pop()!;
      // One the node has half-closed (its FIN read, 'close' not yet emitted) would fail the request.
      if (!reused.isClosed && !reused.socket.destroyed && reused.socket.readable && reused.socket.writable) return reused;
      reused.fail(new Error('closed by the node while idle'));
    }
    const at = hostAndPort(origin);
    if (at === null) return null;
    const conn = new Connection(origin, at.host, at.port, (c) => this.release(c), (c) => this.forget(c));
    this.all.add(conn);
    return conn;
  }

  private release(c: Connection): void {
    let pool = this.idle.get(c.origin);
    if (pool === undefined) this.idle.set(c.origin, (pool = []));
    if (pool.length >= MAX_IDLE_PER_ORIGIN) {
      c.fail(new Error('closed: too many idle connections'));
      return;
    }
    pool.push(c);
  }

  private forget(c: Connection): void {
    this.all.delete(c);
    const pool = this.idle.get(c.origin);
    if (pool === undefined) return;
    const i = pool.indexOf(c);
    if (i >= 0) pool.splice(i, 1);
  }

  /** Closes every connection (idle ones at once; a request in flight fails) and the https transport's. */
  close(): void {
    for (const c of [...this.all]) c.fail(Object.assign(new Error('the client was closed'), { code: 'ECONNRESET' }));
    this.idle.clear();
    this.tlsTransport.close();
  }
}
