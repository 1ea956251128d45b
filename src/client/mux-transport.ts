// The client's transport for plain http:// endpoints: every request to a node goes on one
// raftkv-mux/1 connection (docs/mux.md, mux-frames.ts), shared by all the clients of this
// process, with as many requests in flight as there are callers. A node that does not speak it
// (the upgrade is refused) gets plain HTTP/1.1 (LeanHttpTransport) from then on, for a while.
// Like the HTTP transports, a failed request says whether it ever left this process (http.ts).
import { connect, type Socket } from 'node:net';
import { decodeMuxAnswer, DrainBatchedWriter, encodeMuxRequest, MuxFrameReader, MUX_PATH, MUX_PROTOCOL, type MuxAnswer } from './mux-frames.js';
import { hostAndPort, splitHttpUrl } from './lean-transport.js';
import { CONNECT_TIMEOUT, markNotSent, type FetchLike, type FetchLikeResponse, type ResponseHeaders } from './node-transport.js';

/** An upgrade answer's status line and headers may not exceed this. */
const MAX_HEAD_BYTES = 16 * 1024;
/** The largest answer frame accepted: a node's replies are at most 64 MiB (--max-response-bytes) plus headers. */
const MAX_ANSWER_FRAME_BYTES = (64 << 20) + (64 << 10);
/** A connection with nothing in flight is closed after this (the node closes idle ones after 70 s). */
const IDLE_MS = 30_000;
/** After a node refused the upgrade, plain HTTP is used for it this long before asking again. */
const REFUSED_RETRY_MS = 60_000;

class UpgradeRefused extends Error {}

function isTimeout(reason: unknown): boolean {
  return reason instanceof Error && reason.name === 'TimeoutError';
}

/** A copy of `err` for one request that was never written (each request gets its own, marked). */
function notSent(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const copy = e instanceof UpgradeRefused ? new UpgradeRefused(e.message) : new Error(e.message, { cause: e });
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return markNotSent(copy);
}

/** One request in flight (or waiting for its connection to open). */
interface Pending {
  readonly id: number;
  readonly frame: Buffer;
  readonly owner: MuxTransport;
  readonly resolve: (r: FetchLikeResponse) => void;
  readonly reject: (err: unknown) => void;
  /** Its frame was handed to the socket: the node may have it. */
  isWritten: boolean;
  /** Answers this connection had received when the frame was written (a silent connection is dropped on a timeout). */
  answersAtWrite: number;
}

class MuxHeaders implements ResponseHeaders {
  constructor(private readonly h: Record<string, string>) {}
  get(name: string): string | null {
    return this.h[name.toLowerCase()] ?? null;
  }
  delete(name: string): void {
    delete this.h[name.toLowerCase()];
  }
}

function response(a: MuxAnswer): FetchLikeResponse {
  const body = a.body;
  return {
    status: a.status,
    headers: new MuxHeaders(a.headers),
    arrayBuffer: () => Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer),
  };
}

/** One raftkv-mux connection to one node, shared by the transports of this process. */
class MuxConnection {
  private readonly socket: Socket;
  private state: 'upgrading' | 'open' | 'closed' = 'upgrading';
  private head: Buffer[] = [];
  private headBytes = 0;
  private readonly reader: MuxFrameReader;
  private readonly pending = new Map<number, Pending>();
  private waiting: Pending[] = [];
  private nextId = 1;
  private answers = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly out: DrainBatchedWriter;

  constructor(
    readonly origin: string,
    host: string,
    port: number,
    private readonly onGone: (c: MuxConnection, refused: boolean) => void,
  ) {
    this.reader = new MuxFrameReader(MAX_ANSWER_FRAME_BYTES, (frame) => this.onAnswer(frame));
    this.socket = connect({ host, port });
    this.out = new DrainBatchedWriter(this.socket);
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => {
      this.socket.write(`GET ${MUX_PATH} HTTP/1.1\r\nhost: ${origin}\r\nconnection: Upgrade\r\nupgrade: ${MUX_PROTOCOL}\r\n\r\n`);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(Object.assign(new Error('the connection closed before the answer came'), { code: 'ECONNRESET' })));
  }

  get isUsable(): boolean {
    return this.state !== 'closed' && !this.socket.destroyed;
  }

  send(owner: MuxTransport, method: string, path: string, headers: Readonly<Record<string, string>>, body: Uint8Array | undefined, signal: AbortSignal): Promise<FetchLikeResponse> {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    let frame: Buffer;
    try {
      frame = encodeMuxRequest(id, method, path, headers, body);
    } catch (err) {
      return Promise.reject(markNotSent(err));
    }
    return new Promise<FetchLikeResponse>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.forget(entry)) return;
        if (entry.isWritten) {
          // Timed out with nothing at all come back on this connection since: it is likely dead
          // (a node stopped, a partition); let the next request dial a fresh one. A caller that
          // gives up on its own (a lease closed, an abort signal) says nothing of the connection,
          // which other requests, long waits among them, may be sharing.
          if (isTimeout(signal.reason) && this.answers === entry.answersAtWrite) this.fail(Object.assign(new Error('no answer on the connection'), { code: 'ETIMEDOUT' }));
          reject(signal.reason);
        } else {
          reject(markNotSent(Object.assign(new Error('the connection was not ready before the attempt gave up'), { code: CONNECT_TIMEOUT, cause: signal.reason })));
        }
      };
      const entry: Pending = {
        id,
        frame,
        owner,
        isWritten: false,
        answersAtWrite: 0,
        resolve: (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, entry);
      if (this.idleTimer !== null) {
        clearTimeout(this.idleTimer);
        this.idleTimer = null;
      }
      this.socket.ref();
      if (this.state === 'open') this.write(entry);
      else this.waiting.push(entry);
    });
  }

  /** Fails the requests of `owner` (its client was closed); the connection goes if nobody else uses it. */
  abandon(owner: MuxTransport): void {
    for (const p of [...this.pending.values()]) {
      if (p.owner !== owner) continue;
      this.forget(p);
      p.reject(Object.assign(new Error('the client was closed'), { code: 'ECONNRESET' }));
    }
  }

  close(): void {
    this.fail(Object.assign(new Error('the connection was closed'), { code: 'ECONNRESET' }));
  }

  private write(p: Pending): void {
    p.isWritten = true;
    p.answersAtWrite = this.answers;
    // Requests made together (callers answered in one turn ask again in the same microtask
    // drain) leave in one write: a syscall per request was a quarter of a busy client's CPU.
    this.out.write(p.frame);
  }

  /** Removes `p` from what is in flight; false if it was settled already. */
  private forget(p: Pending): boolean {
    const cur = this.pending.get(p.id);
    if (cur === undefined || cur.frame !== p.frame) return false;
    this.pending.delete(p.id);
    const i = this.waiting.indexOf(cur);
    if (i >= 0) this.waiting.splice(i, 1);
    this.maybeIdle();
    return true;
  }

  private maybeIdle(): void {
    if (this.pending.size > 0 || this.state === 'closed') return;
    this.socket.unref();
    if (this.idleTimer === null) {
      this.idleTimer = setTimeout(() => this.close(), IDLE_MS);
      this.idleTimer.unref();
    }
  }

  private onData(chunk: Buffer): void {
    try {
      if (this.state === 'open') {
        this.reader.push(chunk);
        return;
      }
      this.head.push(chunk);
      this.headBytes += chunk.length;
      const all = Buffer.concat(this.head, this.headBytes);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.headBytes > MAX_HEAD_BYTES) throw new Error('the upgrade answer head is too long');
        return;
      }
      const lines = all.toString('latin1', 0, end).split('\r\n');
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] + ' ');
      const upgrade = lines.find((l) => /^upgrade:/i.test(l))?.slice(8).trim().toLowerCase();
      if (status === null || status[1] !== '101' || upgrade !== MUX_PROTOCOL) {
        this.fail(new UpgradeRefused(`the node answered the upgrade with ${lines[0]!.slice(0, 80)}`));
        return;
      }
      this.state = 'open';
      this.head = [];
      const waiting = this.waiting;
      this.waiting = [];
      this.socket.cork();
      for (const p of waiting) this.write(p);
      this.socket.uncork();
      const rest = all.subarray(end + 4);
      if (rest.length > 0) this.reader.push(rest);
    } catch (err) {
      this.fail(err);
    }
  }

  private onAnswer(frame: Buffer): void {
    const answer = decodeMuxAnswer(frame);
    this.answers++;
    const p = this.pending.get(answer.id);
    // An answer to a request abandoned meanwhile (its caller gave up): nobody waits for it.
    if (p === undefined || !p.isWritten) return;
    this.pending.delete(answer.id);
    p.resolve(response(answer));
    this.maybeIdle();
  }

  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    const refused = err instanceof UpgradeRefused;
    this.state = 'closed';
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.socket.destroy();
    this.onGone(this, refused);
    const all = [...this.pending.values()];
    this.pending.clear();
    this.waiting = [];
    for (const p of all) p.reject(p.isWritten ? err : notSent(err));
  }

  /** Whether `err` is this connection's refusal of the upgrade: the request can go over HTTP instead. */
  static isRefusal(err: unknown): boolean {
    return err instanceof UpgradeRefused;
  }
}

/** Connections by origin, shared by every MuxTransport of this process. */
const shared = new Map<string, MuxConnection>();
/** Origins that refused the upgrade, and until when plain HTTP is used for them. */
const refusedUntil = new Map<string, number>();
/** Transports not closed yet, per connection origin: the last one to close closes the connection. */
const users = new Map<string, Set<MuxTransport>>();

export class MuxTransport {
  private readonly origins = new Set<string>();

  /** `http1` serves what mux cannot: https:// endpoints, and nodes that refuse the upgrade. */
  constructor(private readonly http1: FetchLike) {}

  readonly fetch: FetchLike = (url, init) => {
    if (!url.startsWith('http://')) return this.http1(url, init);
    const { origin, path } = splitHttpUrl(url);
    const until = refusedUntil.get(origin);
    if (until !== undefined) {
      if (Date.now() < until) return this.http1(url, init);
      refusedUntil.delete(origin);
    }
    if (init.signal.aborted) return Promise.reject(markNotSent(init.signal.reason));
    const conn = this.connectionFor(origin);
    if (conn === null) return this.http1(url, init);
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
    return conn.send(this, init.method, path, init.headers, body, init.signal).catch((err: unknown) => {
      // A node that does not speak raftkv-mux never saw the request: send it over HTTP.
      if (MuxConnection.isRefusal(err)) return this.http1(url, init);
      throw err;
    });
  };

  private connectionFor(origin: string): MuxConnection | null {
    let conn = shared.get(origin);
    if (conn === undefined || !conn.isUsable) {
      const at = hostAndPort(origin);
      if (at === null) return null;
      conn = new MuxConnection(origin, at.host, at.port, (c, refused) => {
        if (shared.get(c.origin) === c) shared.delete(c.origin);
        if (refused) refusedUntil.set(c.origin, Date.now() + REFUSED_RETRY_MS);
      });
      shared.set(origin, conn);
    }
    if (!this.origins.has(origin)) {
      this.origins.add(origin);
      let set = users.get(origin);
      if (set === undefined) users.set(origin, (set = new Set()));
      set.add(this);
    }
    return conn;
  }

  /** Fails this transport's requests in flight; a connection nobody else uses is closed. A later request opens one again. */
  close(): void {
    for (const origin of this.origins) {
      const set = users.get(origin);
      set?.delete(this);
      const conn = shared.get(origin);
      if (conn === undefined) continue;
      conn.abandon(this);
      if (set === undefined || set.size === 0) {
        users.delete(origin);
        shared.delete(origin);
        conn.close();
      }
    }
    this.origins.clear();
  }
}
