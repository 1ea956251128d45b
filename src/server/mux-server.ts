// The server side of raftkv-mux/1 (src/client/mux-frames.ts, docs/mux.md): an HTTP/1.1 upgrade
// on the client port turns the connection into frames of requests, each served by the HTTP API
// exactly as the same HTTP request (http-api.ts `serve`), many in flight at once, answers in the
// order they finish. Answers finished in one turn of the event loop leave in one write.
//
// What a hostile or careless client cannot do here: send a frame larger than a request may be
// (refused before it is buffered, and the connection closed), leave a frame half-sent (cut after
// the body timeout), reuse an id still in flight, keep more than MAX_IN_FLIGHT requests open (the
// connection is not read until answers go out), or never read its answers (its requests are not
// read while 1 MiB of answers waits; past MAX_UNSENT_BYTES it is cut). Every request goes through the HTTP API's own authentication, permissions,
// limits and pending-request cap.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { decodeMuxRequest, DrainBatchedWriter, encodeMuxAnswer, MuxFrameReader, MuxProtocolError, MUX_PATH, MUX_PROTOCOL, type MuxRequest } from '../client/mux-frames.js';
import type { PlainAnswer, PlainRequest } from './http-api.js';

/** Requests one connection may have in flight; past it the connection is not read until some are answered. */
export const MUX_MAX_IN_FLIGHT = 1024;
/** Answers waiting for a client that does not read them, at most; past it the connection goes. */
export const MUX_MAX_UNSENT_BYTES = 16 << 20;
/** Past this many bytes of answers waiting to be written, no more requests are read until they drain. */
const MUX_PAUSE_UNSENT_BYTES = 1 << 20;

export interface MuxServerOptions {
  readonly nodeId: string;
  readonly serve: (req: PlainRequest) => Promise<PlainAnswer>;
  /** The largest request frame: the largest body plus room for the path and headers. */
  readonly maxFrameBytes: number;
  /** A frame begun must be complete within this. @default 30000 */
  readonly frameTimeoutMs?: number;
  /** A connection with nothing in flight and nothing received for this long is closed. @default 70000 */
  readonly idleTimeoutMs?: number;
  /** Told of each connection refused or cut, by reason (the HTTP API's refused counter). */
  readonly onRefused: (reason: string) => void;
  /** Told of each request frame read, before it is served (the HTTP API's turn budget, turn-budget.ts). */
  readonly onFrame?: () => void;
  readonly onError: (message: string, fields: Record<string, unknown>) => void;
}

export interface MuxHub {
  /** Connections open now. */
  readonly size: number;
  /** Closes connections with nothing in flight now, and each other one once its answers are out; no new requests are read. */
  closeIdle(): void;
  /** Closes every connection now. */
  closeAll(): void;
}

const UPGRADED =
  `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${MUX_PROTOCOL}\r\n`;

/** Serves raftkv-mux on `server`'s upgrade requests; other upgrades are refused with the API's JSON error. */
export function attachMux(server: Server, options: MuxServerOptions): MuxHub {
  const open = new Set<MuxConnection>();
  let isClosing = false;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const path = (req.url ?? '').split('?')[0];
    const protocol = String(req.headers.upgrade ?? '').toLowerCase();
    if (req.method !== 'GET' || path !== MUX_PATH || protocol !== MUX_PROTOCOL) {
      options.onRefused('upgrade');
      const status = path === MUX_PATH ? '400 Bad Request' : '404 Not Found';
      const body = JSON.stringify({ error: { code: path === MUX_PATH ? 'BAD_REQUEST' : 'NOT_FOUND', message: path === MUX_PATH ? `upgrade to ${MUX_PROTOCOL} with GET` : `no upgrade is served on ${String(path).slice(0, 200)}` } });
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    if (isClosing) {
      socket.destroy();
      return;
    }
    socket.write(`${UPGRADED}raftkv-node: ${options.nodeId}\r\n\r\n`);
    const conn = new MuxConnection(socket, options, () => open.delete(conn));
    open.add(conn);
    if (head.length > 0) conn.receive(head);
  });
  return {
    get size() {
      return open.size;
    },
    closeIdle() {
      isClosing = true;
      for (const c of [...open]) c.closeWhenIdle();
    },
    closeAll() {
      isClosing = true;
      for (const c of [...open]) c.destroy();
    },
  };
}

class MuxConnection {
  private readonly reader: MuxFrameReader;
  private readonly inFlight = new Set<number>();
  /** Not read while too many requests are in flight, or while answers wait to be written. */
  private isFull = false;
  private isBackedUp = false;
  private readonly out: DrainBatchedWriter;
  private isClosed = false;
  private isDraining = false;
  private frameTimer: NodeJS.Timeout | null = null;
  private readonly frameTimeoutMs: number;

  constructor(
    private readonly socket: Duplex,
    private readonly o: MuxServerOptions,
    private readonly onGone: () => void,
  ) {
    this.frameTimeoutMs = o.frameTimeoutMs ?? 30_000;
    this.out = new DrainBatchedWriter(socket);
    this.reader = new MuxFrameReader(o.maxFrameBytes, (frame) => this.onFrame(frame));
    const s = socket as Duplex & { setNoDelay?(on: boolean): void; setTimeout?(ms: number): void };
    s.setNoDelay?.(true);
    s.setTimeout?.(o.idleTimeoutMs ?? 70_000);
    socket.on('timeout', () => {
      if (this.inFlight.size === 0) this.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.gone());
    socket.on('end', () => {
      // The client is done sending: answer what is in flight, then close.
      this.closeWhenIdle();
    });
  }

  receive(chunk: Buffer): void {
    if (this.isClosed || this.isDraining) return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof MuxProtocolError) {
        this.o.onRefused('mux-protocol');
      } else {
        this.o.onError('raftkv-mux: a frame failed', { error: String(err) });
      }
      this.destroy();
      return;
    }
    if (this.reader.pendingBytes === 0) {
      if (this.frameTimer !== null) {
        clearTimeout(this.frameTimer);
        this.frameTimer = null;
      }
    } else if (this.frameTimer === null) {
      this.frameTimer = setTimeout(() => {
        // While this node does not read (too much in flight, answers unread), the half frame is
        // ours to wait for, not the client's fault.
        if (this.isFull || this.isBackedUp) {
          this.frameTimer?.refresh();
          return;
        }
        this.o.onRefused('mux-slow-frame');
        this.destroy();
      }, this.frameTimeoutMs);
      this.frameTimer.unref();
    } else {
      this.frameTimer.refresh();
    }
  }

  closeWhenIdle(): void {
    this.isDraining = true;
    if (this.inFlight.size === 0) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
    this.gone();
  }

  private onFrame(frame: Buffer): void {
    if (this.isDraining) return;
    this.o.onFrame?.();
    const req: MuxRequest = decodeMuxRequest(frame);
    if (this.inFlight.has(req.id)) throw new MuxProtocolError(`request id ${req.id} is in flight already`);
    this.inFlight.add(req.id);
    if (this.inFlight.size >= MUX_MAX_IN_FLIGHT && !this.isFull) {
      this.isFull = true;
      this.socket.pause();
    }
    void this.o.serve({ method: req.method, url: req.path, headers: req.headers, body: req.body }).then((answer) => this.answer(req.id, answer));
  }

  private answer(id: number, answer: PlainAnswer): void {
    this.inFlight.delete(id);
    if (this.isClosed) return;
    let frame: Buffer;
    try {
      frame = encodeMuxAnswer(id, answer.status, answer.headers, answer.body);
    } catch (err) {
      this.o.onError('raftkv-mux: an answer could not be encoded', { error: String(err) });
      frame = encodeMuxAnswer(id, 500, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ error: { code: 'INTERNAL', message: 'the answer could not be encoded' } })));
    }
    // Answers finished together (the entries of one apply, whose promise chains all settle in
    // one microtask drain) go out in one write, at the end of that drain: before the loop turn's
    // setImmediate work, such as the peers' new commit index (peer-sender.ts), which would
    // otherwise go first. With setImmediate here: 1,051 and 1,092 writes/s at one client against
    // 1,164 and 1,215 with nextTick (alternated), and no batch lost at 256 clients.
    this.out.write(frame);
    const unsent = this.socket.writableLength;
    // One large answer may exceed the bound (a listing is up to --max-response-bytes); answers
    // piling up behind others may not.
    if (unsent > MUX_MAX_UNSENT_BYTES && unsent > frame.length) {
      this.o.onRefused('mux-unread');
      this.destroy();
      return;
    }
    if (unsent > MUX_PAUSE_UNSENT_BYTES && !this.isBackedUp) {
      // A client that does not read its answers gets no more of them: its next requests wait
      // in the kernel's buffers and its own, not in this process.
      this.isBackedUp = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.isBackedUp = false;
        if (!this.isFull && !this.isClosed) this.socket.resume();
      });
    }
    if (this.isFull && this.inFlight.size <= MUX_MAX_IN_FLIGHT / 2) {
      this.isFull = false;
      if (!this.isBackedUp) this.socket.resume();
    }
    if (this.isDraining && this.inFlight.size === 0) this.socket.end();
  }

  private gone(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.frameTimer !== null) clearTimeout(this.frameTimer);
    this.onGone();
  }
}
