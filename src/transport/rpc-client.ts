// Requests to one peer over a connection of their own (stream purpose "rpc"), beside the message
// stream so a forwarded client request never waits behind AppendEntries or a snapshot. Answers
// are matched to requests by id; every request has a deadline, and a lost connection fails
// every request in flight on it (the caller decides whether a retry is safe).
import net from 'node:net';
import { CodecError } from './binary.js';
import { FrameDecoder, FrameType, PROTOCOL_VERSION, decodeRpcResponse, encodeHello, encodeRpcRequest, frameBody, frameType } from './frame.js';
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
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (err: RpcError) => void;
  readonly timer: NodeJS.Timeout;
}

export interface RpcClientOptions {
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  readonly clusterId: string;
  readonly maxFrameBytes: number;
  readonly dialTimeoutMs: number;
  readonly logger: TransportLogger;
}

export class RpcClient {
  private socket: net.Socket | null = null;
  private isReady = false;
  private readonly waitingForConnection: (() => void)[] = [];
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
        this.pending.delete(id);
        reject(new RpcError(`${this.options.peerId} did not answer within ${timeoutMs} ms`, true));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const write = (): void => {
        if (!this.pending.has(id) || this.socket === null) return;
        for (const part of encodeRpcRequest(id, payload)) this.socket.write(part);
      };
      if (this.isReady) write();
      else {
        this.waitingForConnection.push(write);
        this.connect();
      }
    });
  }

  close(): void {
    this.isClosed = true;
    this.socket?.destroy();
    this.failAll('the transport is stopped', false);
  }

  private connect(): void {
    if (this.socket !== null) return;
    const { options } = this;
    const socket = net.connect({ host: this.address.host, port: this.address.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(options.maxFrameBytes);
    const dialTimer = setTimeout(() => socket.destroy(new Error('dial timed out')), options.dialTimeoutMs);
    socket.on('connect', () => {
      socket.write(encodeHello({ version: PROTOCOL_VERSION, clusterId: options.clusterId, from: options.selfId, to: options.peerId, purpose: 'rpc' }));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          const type = frameType(frame);
          if (!this.isReady) {
            if (type === FrameType.helloReject) throw new CodecError(`refused: ${frameBody(frame).shortString('reason')}`);
            if (type !== FrameType.helloAck) throw new CodecError(`expected a handshake answer, got frame type ${type}`);
            clearTimeout(dialTimer);
            this.isReady = true;
            for (const write of this.waitingForConnection.splice(0)) write();
            return true;
          }
          if (type !== FrameType.rpcResponse) throw new CodecError(`unexpected frame type ${type} on an rpc stream`);
          const { id, ok, payload } = decodeRpcResponse(frame);
          const p = this.pending.get(id);
          if (p === undefined) return true; // answered after its deadline
          this.pending.delete(id);
          clearTimeout(p.timer);
          // The payload is a view of a socket buffer; copy so the caller may keep it.
          if (ok) p.resolve(Uint8Array.prototype.slice.call(payload));
          else p.reject(new RpcError(`${options.peerId}: ${payload.toString('utf8')}`, true));
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
      const wasReady = this.isReady;
      this.socket = null;
      this.isReady = false;
      this.waitingForConnection.length = 0;
      this.failAll(`connection to ${options.peerId} lost`, wasReady);
    });
  }

  private failAll(reason: string, maybeDelivered: boolean): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new RpcError(reason, maybeDelivered));
    }
  }
}
