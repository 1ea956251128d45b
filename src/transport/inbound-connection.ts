// One accepted connection: checks the handshake, then either decodes the message stream into
// onMessage or assembles a snapshot stream. Anything malformed (a bad handshake, an oversize or
// undecodable frame, a message that lies about its sender) closes THIS connection with a logged
// error; nothing a peer sends can throw out of a socket handler and take the process down.
import type net from 'node:net';
import { CodecError } from './binary.js';
import { decodeMessage, isMessageFrameType } from './codec.js';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  decodeHello,
  encodeHelloAck,
  encodeHelloReject,
  encodeSnapshotAck,
  encodeRpcResponse,
  decodeRpcRequest,
  frameBody,
  frameType,
} from './frame.js';
import { SnapshotAssembly } from './snapshot-assembly.js';
import type { Hello } from './frame.js';
import type { Message, NodeId } from '../raft/types.js';
import type { TransportLogger } from './types.js';

/** What every inbound connection shares with its transport (counters are mutated in place). */
export interface InboundContext {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly maxFrameBytes: number;
  readonly maxSnapshotBytes: number;
  readonly logger: TransportLogger;
  readonly deliver: (m: Message) => void;
  /** Answers a request on an rpc stream; a rejection is sent back as an error text. */
  readonly answer: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
  readonly counters: InboundCounters;
}

export interface InboundCounters {
  messagesReceived: number;
  bytesReceived: number;
  connectionsRejected: number;
  snapshotsReceived: number;
  snapshotsDiscarded: number;
  snapshotBytesInProgress: number;
}

type Phase = 'hello' | 'messages' | 'rpc' | 'snapshot-begin' | 'snapshot-data' | 'snapshot-done' | 'closed';

export class InboundConnection {
  private phase: Phase = 'hello';
  private peer: NodeId | null = null;
  private assembly: SnapshotAssembly | null = null;
  private readonly decoder: FrameDecoder;

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: InboundContext,
  ) {
    this.decoder = new FrameDecoder(ctx.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => ctx.logger.debug('inbound connection error', { peer: this.peer, error: err.message }));
    socket.on('close', () => this.onClose());
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.ctx.counters.bytesReceived += chunk.length;
    try {
      this.decoder.push(chunk, (frame) => {
        this.onFrame(frame);
        return this.phase !== 'closed';
      });
    } catch (err) {
      this.reject(err instanceof CodecError ? err.message : `internal error: ${String(err)}`);
    }
  }

  private onFrame(frame: Buffer): void {
    const type = frameType(frame);
    switch (this.phase) {
      case 'hello':
        if (type !== FrameType.hello) throw new CodecError(`expected a handshake, got frame type ${type}`);
        this.onHello(decodeHello(frame));
        return;
      case 'messages': {
        if (!isMessageFrameType(type)) throw new CodecError(`unexpected frame type ${type} on the message stream`);
        const m = decodeMessage(frame);
        // A stream speaks for the node that opened it; a message claiming otherwise is a bug.
        if (m.from !== this.peer || m.to !== this.ctx.selfId) {
          throw new CodecError(`message ${m.from}→${m.to} on the stream from ${this.peer}`);
        }
        this.ctx.counters.messagesReceived++;
        this.ctx.deliver(m);
        return;
      }
      case 'rpc': {
        if (type !== FrameType.rpcRequest) throw new CodecError(`unexpected frame type ${type} on an rpc stream`);
        const { id, payload } = decodeRpcRequest(frame);
        // Copy: the frame is a view of a socket buffer and the answer may take a while.
        const request = Uint8Array.prototype.slice.call(payload);
        const reply = (ok: boolean, bytes: Uint8Array): void => {
          if (this.phase === 'closed') return;
          for (const part of encodeRpcResponse(id, ok, bytes)) this.socket.write(part);
        };
        this.ctx.answer(this.peer!, request).then(
          (answer) => reply(true, answer),
          (err: unknown) => reply(false, Buffer.from(err instanceof Error ? err.message : String(err))),
        );
        return;
      }
      case 'snapshot-begin':
        if (type !== FrameType.snapshotBegin) throw new CodecError(`expected a snapshot header, got frame type ${type}`);
        this.onSnapshotBegin(frame);
        return;
      case 'snapshot-data':
        if (type === FrameType.snapshotChunk) {
          const before = this.assembly!.receivedBytes;
          this.assembly!.add(frame.subarray(5));
          this.ctx.counters.snapshotBytesInProgress += this.assembly!.receivedBytes - before;
        } else if (type === FrameType.snapshotEnd) {
          const r = frameBody(frame);
          const crc = r.u32('crc32');
          r.expectEnd('snapshot end');
          this.onSnapshotEnd(crc);
        } else {
          throw new CodecError(`unexpected frame type ${type} in a snapshot stream`);
        }
        return;
      case 'snapshot-done':
      case 'closed':
        throw new CodecError(`unexpected frame type ${type} after the snapshot`);
    }
  }

  private onHello(hello: Hello): void {
    const { clusterId, selfId, logger } = this.ctx;
    let refusal: string | null = null;
    if (hello.version !== PROTOCOL_VERSION) refusal = `protocol version ${hello.version} is not ${PROTOCOL_VERSION}`;
    else if (hello.clusterId !== clusterId) refusal = `cluster "${hello.clusterId}" is not "${clusterId}"`;
    else if (hello.to !== selfId) refusal = `this is node "${selfId}", not "${hello.to}"`;
    if (refusal !== null) {
      this.ctx.counters.connectionsRejected++;
      logger.error('refused a peer handshake', { from: hello.from, remote: this.socket.remoteAddress, reason: refusal });
      this.phase = 'closed';
      // end() flushes the reason to the dialer so its log says why, then closes.
      this.socket.end(encodeHelloReject(refusal));
      this.socket.setTimeout(1000, () => this.socket.destroy());
      return;
    }
    this.peer = hello.from;
    this.phase = hello.purpose === 'messages' ? 'messages' : hello.purpose === 'rpc' ? 'rpc' : 'snapshot-begin';
    this.socket.write(encodeHelloAck());
  }

  private onSnapshotBegin(frame: Buffer): void {
    const r = frameBody(frame);
    const total = r.varint('snapshot length');
    const m = decodeMessage(frame.subarray(r.offset));
    if (m.type !== 'InstallSnapshot' || m.from !== this.peer || m.to !== this.ctx.selfId) {
      throw new CodecError(`snapshot header is not an InstallSnapshot from ${this.peer}`);
    }
    if (total > this.ctx.maxSnapshotBytes) {
      throw new CodecError(`snapshot of ${total} bytes exceeds the limit of ${this.ctx.maxSnapshotBytes}`);
    }
    this.assembly = new SnapshotAssembly(m, total);
    this.phase = 'snapshot-data';
  }

  private onSnapshotEnd(crc: number): void {
    const assembly = this.assembly!;
    this.assembly = null;
    this.ctx.counters.snapshotBytesInProgress -= assembly.receivedBytes;
    let m: Message;
    try {
      m = assembly.finish(crc);
    } catch (err) {
      this.ctx.counters.snapshotsDiscarded++;
      this.ctx.logger.error('snapshot discarded', { peer: this.peer, error: String(err) });
      this.phase = 'closed';
      this.socket.end(encodeSnapshotAck(false));
      this.socket.setTimeout(1000, () => this.socket.destroy());
      return;
    }
    this.phase = 'snapshot-done';
    this.ctx.counters.snapshotsReceived++;
    this.ctx.deliver(m);
    this.socket.write(encodeSnapshotAck(true));
  }

  private reject(reason: string): void {
    if (this.phase === 'closed') return;
    this.ctx.counters.connectionsRejected++;
    this.ctx.logger.error('closing a peer connection: malformed input', { peer: this.peer, remote: this.socket.remoteAddress, reason });
    this.phase = 'closed';
    this.discardAssembly();
    this.socket.destroy();
  }

  private onClose(): void {
    this.phase = 'closed';
    if (this.discardAssembly()) this.ctx.logger.warn('snapshot transfer interrupted; discarded', { peer: this.peer });
  }

  private discardAssembly(): boolean {
    const assembly = this.assembly;
    if (assembly === null) return false;
    this.assembly = null;
    this.ctx.counters.snapshotBytesInProgress -= assembly.receivedBytes;
    this.ctx.counters.snapshotsDiscarded++;
    return true;
  }

  /** Closes at once (the transport is stopping); an unfinished snapshot is discarded. */
  destroy(): void {
    this.socket.destroy();
  }
}
