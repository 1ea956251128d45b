// Requests to one peer over a connection of their own (stream purpose "rpc"), beside the message
// stream so a forwarded client request never waits behind AppendEntries or a snapshot. Answers
// are matched to requests by id; every request has a deadline, and a lost connection fails
// every request in flight on it (the caller decides whether a retry is safe). The peer closes a
// quiet rpc stream after its idle timeout with GOODBYE: requests that crossed it on the wire
// were never read, so they go again on a new connection instead of failing as maybe delivered.
import { CodecError } from './binary.js';
import { dial } from './dial.js';
import { FrameDecoder, FrameType, MAX_HELLO_FRAME_BYTES, PROTOCOL_VERSION, decodeRpcResponse, encodeHello, encodeRpcRequest, frameBody, frameType } from './frame.js';
import type net from 'node:net';
import type { DialSettings } from './dial.js';
import type { NodeId } from '../raft/types.js';
import type { PeerAddress, TransportLogger } from './types.js';

export class RpcError extends Error {
  constructor(
    message: string,
    /** False when the request surely never reached the peer (it may be retried anywhere). */
    readonly maybeDelivered: boolean,
  ) {
    super(message);
  }
}

interface Pending {
  readonly payload: Uint8Array;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (err: RpcError) => void;
  readonly timer: NodeJS.Timeout;
  /** The connection it was written on; null while it waits for one. */
  socket: net.Socket | null;
}

export interface RpcClientOptions {
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  /** Read at each dial. */
  readonly clusterId: () => string;
  readonly dialing: DialSettings;
  readonly maxFrameBytes: number;
  readonly dialTimeoutMs: number;
  readonly logger: TransportLogger;
}

export class RpcClient {
  private socket: net.Socket | null = null;
  private isReady = false;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private isClosed = false;

  constructor(
    private address: PeerAddress,
    private readonly options: RpcClientOptions,
  ) {}

  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.socket?.destroy();
  }

  request(payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.isClosed) return Promise.reject(new RpcError('the transport is stopped', false));
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        reject(new RpcError(`${this.options.peerId} did not answer within ${timeoutMs} ms`, p?.socket !== null));
      }, timeoutMs);
      this.pending.set(id, { payload, resolve, reject, timer, socket: null });
      if (this.isReady) this.write(id);
      else this.connect();
    });
  }

  close(): void {
    this.isClosed = true;
    this.socket?.destroy();
    for (const [id, p] of this.pending) this.fail(id, p, 'the transport is stopped', p.socket !== null);
  }

  private write(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined || this.socket === null) return;
    p.socket = this.socket;
    // One writev: two writes would wake the peer twice, the first time for a header alone.
    this.socket.cork();
    for (const part of encodeRpcRequest(id, p.payload)) this.socket.write(part);
    this.socket.uncork();
  }

  private connect(): void {
    if (this.socket !== null) return;
    const { options } = this;
    const { socket, readyEvent } = dial(this.address, options.dialing);
    this.socket = socket;
    // Only a handshake answer may come first, and it is small: a peer cannot make us buffer
    // a large frame before it has accepted us.
    const decoder = new FrameDecoder(MAX_HELLO_FRAME_BYTES);
    const dialTimer = setTimeout(() => socket.destroy(new Error('dial timed out')), options.dialTimeoutMs);
    let isAccepted = false;
    socket.once(readyEvent, () => {
      socket.write(encodeHello({ version: PROTOCOL_VERSION, clusterId: options.clusterId(), from: options.selfId, to: options.peerId, purpose: 'rpc' }));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          const type = frameType(frame);
          if (!isAccepted) {
            if (type === FrameType.helloReject) throw new CodecError(`refused: ${frameBody(frame).shortString('reason')}`);
            if (type !== FrameType.helloAck) throw new CodecError(`expected a handshake answer, got frame type ${type}`);
            clearTimeout(dialTimer);
            decoder.maxFrameBytes = options.maxFrameBytes;
            isAccepted = true;
            if (socket !== this.socket) return true; // replaced meanwhile (setAddress)
            this.isReady = true;
            for (const [id, p] of this.pending) if (p.socket === null) this.write(id);
            return true;
          }
          if (type === FrameType.goodbye) {
            this.onGoodbye(socket);
            return false;
          }
          if (type !== FrameType.rpcResponse) throw new CodecError(`unexpected frame type ${type} on an rpc stream`);
          const { id, status, payload } = decodeRpcResponse(frame);
          const p = this.pending.get(id);
          if (p === undefined) return true; // answered after its deadline
          this.pending.delete(id);
          clearTimeout(p.timer);
          // The payload is a view of a socket buffer; copy so the caller may keep it.
          if (status === 'ok') p.resolve(Uint8Array.prototype.slice.call(payload));
          // 'refused': the peer turned it away before its handler ran (too many in flight).
          else p.reject(new RpcError(`${options.peerId}: ${payload.toString('utf8')}`, status === 'error'));
          return true;
        });
      } catch (err) {
        options.logger.warn('rpc stream closed: bad input', { peer: options.peerId, error: String(err) });
        socket.destroy();
      }
    });
    socket.on('error', (err) => options.logger.debug('rpc connection error', { peer: options.peerId, error: err.message }));
    socket.on('close', () => {
      clearTimeout(dialTimer);
      if (socket === this.socket) {
        this.socket = null;
        this.isReady = false;
        // Those still waiting never got a connection: surely not delivered.
        for (const [id, p] of this.pending) if (p.socket === null) this.fail(id, p, `cannot connect to ${options.peerId}`, false);
      }
      for (const [id, p] of this.pending) if (p.socket === socket) this.fail(id, p, `connection to ${options.peerId} lost`, true);
    });
  }

  /**
   * The peer closed this stream as idle. It answered everything it read before saying so, so
   * what is still pending on it was never read: send it again on a new connection.
   */
  private onGoodbye(socket: net.Socket): void {
    let hasUnanswered = false;
    for (const p of this.pending.values()) {
      if (p.socket !== socket) continue;
      p.socket = null;
      hasUnanswered = true;
    }
    socket.end();
    if (socket === this.socket) {
      this.socket = null;
      this.isReady = false;
    }
    if (!hasUnanswered) return;
    if (this.isReady) {
      for (const [id, p] of this.pending) if (p.socket === null) this.write(id);
    } else {
      this.connect();
    }
  }

  private fail(id: number, p: Pending, reason: string, maybeDelivered: boolean): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    p.reject(new RpcError(reason, maybeDelivered));
  }
}
