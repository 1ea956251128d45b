// A hostile peer on a running node's peer port: a raw socket (plain TCP, or TLS with whatever
// certificate the attack holds) that writes our framing by hand (docs/transport.md, "Frames"), so
// a test can send what no honest transport would: a HELLO from a stranger, messages pipelined
// behind a HELLO that will be refused, a 16 MiB length before any handshake, a snapshot that
// announces 1 GiB. It only records what the node answers; every socket is destroyed by
// destroyHostilePeers() (call it from `after`), so a failing test leaves nothing open.
import net from 'node:net';
import tls from 'node:tls';
import { Reader } from '../../src/transport/binary.js';
import { MessageEncoder } from '../../src/transport/codec.js';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  decodeRpcResponse,
  encodeHello,
  encodeRpcRequest,
  encodeSnapshotBegin,
  snapshotChunkHeader,
  type RpcStatus,
  type StreamPurpose,
} from '../../src/transport/frame.js';
import { encodeForwardedRequest, decodeForwardedResponse } from '../../src/server/forward.js';
import type { InstallSnapshot, Message } from '../../src/raft/types.js';
import type { ForwardedRequest, ForwardedResponse } from '../../src/server/http-api.js';
import type { TestNode } from '../cluster/harness.js';

/** What a TLS attacker dials with: the CA it trusts the node by, and the certificate it presents (if any). */
export interface PeerTls {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** How the node answered the opening of a connection. */
export type HandshakeOutcome =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'rejected'; readonly reason: string }
  /** Closed without a word: the TLS layer, a limit, or a frame refused as soon as its length was read. */
  | { readonly kind: 'closed' }
  /** Still open and silent when we stopped waiting. */
  | { readonly kind: 'silent' };

const live = new Set<HostilePeer>();

/** Destroys every hostile socket still open. */
export function destroyHostilePeers(): void {
  for (const p of live) p.destroy();
  live.clear();
}

export function peerPort(node: TestNode): number {
  return Number(node.peerAddr.split(':')[1]);
}

export class HostilePeer {
  /** Frames the node sent back, whole (length prefix included). */
  readonly frames: Buffer[] = [];
  /** Milliseconds from connect() to the close, once closed. */
  closedAfterMs: number | null = null;
  readonly socket: net.Socket;
  private readonly openedAt = performance.now();
  private readonly decoder = new FrameDecoder(64 << 20);
  private readonly closed: Promise<void>;

  constructor(port: number, options: { readonly tls?: PeerTls } = {}) {
    const t = options.tls;
    this.socket =
      t === undefined
        ? net.connect({ host: '127.0.0.1', port })
        : tls.connect({ host: '127.0.0.1', port, ca: t.ca, ...(t.cert !== undefined ? { cert: t.cert, key: t.key } : {}) });
    this.socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk, (f) => this.frames.push(Buffer.from(f)) > 0);
      } catch {
        this.socket.destroy();
      }
    });
    // A refused TLS handshake or a reset is an answer, not a test failure.
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closedAfterMs = performance.now() - this.openedAt;
        live.delete(this);
        resolve();
      }),
    );
    live.add(this);
  }

  get isClosed(): boolean {
    return this.closedAfterMs !== null;
  }

  /** Queues bytes; the socket holds them until it is connected (after TLS, with TLS), in order. */
  send(...chunks: readonly Buffer[]): this {
    for (const c of chunks) if (!this.socket.destroyed) this.socket.write(c);
    return this;
  }

  /** Resolves true once closed, false if still open after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.closed.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return result;
  }

  /** Waits (bounded) for the node's first frame or the close, and says which. */
  async handshake(timeoutMs = 3000): Promise<HandshakeOutcome> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0 && !this.isClosed && Date.now() < deadline) await sleep(5);
    const first = this.frames[0];
    if (first === undefined) return this.isClosed ? { kind: 'closed' } : { kind: 'silent' };
    if (first[4] === FrameType.helloAck) return { kind: 'accepted' };
    if (first[4] === FrameType.helloReject) return { kind: 'rejected', reason: new Reader(first, 5).shortString('reason') };
    throw new Error(`the node opened with frame type 0x${first[4]!.toString(16)}`);
  }

  /** Waits (bounded) for a frame of `type` after the handshake; null if none came. */
  async nextFrame(type: number, timeoutMs: number): Promise<Buffer | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => x[4] === type);
      if (f !== undefined) return f;
      if (this.isClosed || Date.now() >= deadline) return null;
      await sleep(5);
    }
  }

  destroy(): void {
    this.socket.destroy();
    live.delete(this);
  }
}

export function hello(from: string, to: string, clusterId: string, purpose: StreamPurpose = 'messages'): Buffer {
  return encodeHello({ version: PROTOCOL_VERSION, clusterId, from, to, purpose });
}

const encoder = new MessageEncoder(1 << 20);

/** One message as a frame, encoded by the real codec (so only our choice of fields is hostile). */
export function messageFrame(m: Message): Buffer {
  const f = encoder.encode(m);
  return Array.isArray(f) ? Buffer.concat(f) : Buffer.from(f);
}

/** SNAP_BEGIN announcing `totalBytes`, around `header` (an InstallSnapshot with empty data). */
export function snapshotBegin(totalBytes: number, header: InstallSnapshot): Buffer {
  return encodeSnapshotBegin(totalBytes, messageFrame(header));
}

export function snapshotChunk(bytes: Buffer): Buffer {
  return Buffer.concat([snapshotChunkHeader(bytes.length), bytes]);
}

/** An rpc request carrying a request "forwarded" to the node as a follower would send it. */
export function forwardedRequestFrame(id: number, req: ForwardedRequest): Buffer {
  return Buffer.concat(encodeRpcRequest(id, encodeForwardedRequest(req)));
}

/** A POST /v1/... as a follower forwards it. */
export function forwardedJson(method: string, path: string, body: unknown, principal?: string): ForwardedRequest {
  return {
    method,
    path,
    headers: { 'content-type': 'application/json' },
    body: new TextEncoder().encode(JSON.stringify(body)),
    ...(principal !== undefined ? { principal } : {}),
  };
}

/** The answer to rpc request `id`, if it came: the status byte and, for `ok`, the forwarded response. */
export async function rpcAnswer(peer: HostilePeer, id: number, timeoutMs: number): Promise<{ status: RpcStatus; response: ForwardedResponse | null; text: string } | null> {
  const r = await rpcPayload(peer, id, timeoutMs);
  if (r === null) return null;
  return { status: r.status, response: r.status === 'ok' ? decodeForwardedResponse(r.payload) : null, text: r.payload.toString('utf8') };
}

/** The raw answer to rpc request `id`, if it came. */
export async function rpcPayload(peer: HostilePeer, id: number, timeoutMs: number): Promise<{ status: RpcStatus; payload: Buffer } | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of peer.frames) {
      if (f[4] !== FrameType.rpcResponse) continue;
      const r = decodeRpcResponse(f);
      if (r.id === id) return { status: r.status, payload: r.payload };
    }
    if (peer.isClosed || Date.now() >= deadline) return null;
    await sleep(5);
  }
}

/** An rpc request carrying raw bytes (a proposal batch, or garbage). */
export function rpcFrame(id: number, payload: Uint8Array): Buffer {
  return Buffer.concat(encodeRpcRequest(id, payload));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
