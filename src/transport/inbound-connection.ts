// One accepted connection: checks the handshake, then either decodes the message stream into
// onMessage, answers rpc requests, or assembles a snapshot stream. Every byte is hostile until
// the handshake is accepted, and everything a peer can make us hold is bounded:
//   - the HELLO must complete within the handshake deadline, in frames of at most maxHelloBytes;
//   - who may speak is decided by checkHello (membership, cluster) or, by default, the cluster id;
//   - an accepted stream silent both ways for idleTimeoutMs is closed;
//   - an rpc stream has at most maxRpcInFlight requests being answered, and is not read while
//     its answers are not being read;
//   - a snapshot stream must pass acceptSnapshot and SnapshotAdmission BEFORE anything is
//     allocated, and its memory grows only with the bytes that arrive.
// Anything malformed (an oversize or undecodable frame, a message that lies about its sender)
// closes THIS connection; nothing a peer sends can throw out of a socket handler. Log lines go
// through the LogLimiter, so a flood of bad connections cannot flood the log.
import tls from 'node:tls';
import { CodecError } from './binary.js';
import { decodeMessage, isMessageFrameType } from './codec.js';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  decodeHello,
  encodeGoodbye,
  encodeHelloAck,
  encodeHelloReject,
  encodeSnapshotAck,
  encodeRpcResponse,
  decodeRpcRequest,
  frameBody,
  frameType,
} from './frame.js';
import { SnapshotAssembly } from './snapshot-assembly.js';
import type net from 'node:net';
import type { Hello, RpcStatus } from './frame.js';
import type { LogLimiter } from './log-limiter.js';
import type { SnapshotAdmission, SnapshotReservation } from './snapshot-admission.js';
import type { Message, NodeId } from '../raft/types.js';
import type { HelloCheck, HelloPeer, SnapshotCheck, TransportRejections } from './types.js';

/** What every inbound connection shares with its transport (counters are mutated in place). */
export interface InboundContext {
  readonly selfId: NodeId;
  /** Read at each handshake: the cluster id may be learned after start. Never throws. */
  readonly clusterId: () => string;
  readonly checkHello: HelloCheck | undefined;
  readonly acceptSnapshot: SnapshotCheck | undefined;
  readonly maxHelloBytes: number;
  readonly maxFrameBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxRpcInFlight: number;
  readonly snapshots: SnapshotAdmission;
  readonly log: LogLimiter;
  readonly deliver: (m: Message) => void;
  /** Answers a request on an rpc stream; a rejection is sent back as an error text. */
  readonly answer: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
  readonly counters: InboundCounters;
}

export type RejectionKind = keyof TransportRejections;

export interface InboundCounters {
  messagesReceived: number;
  bytesReceived: number;
  snapshotsReceived: number;
  snapshotsDiscarded: number;
  snapshotBytesInProgress: number;
  snapshotBytesAllocated: number;
  readonly rejected: { -readonly [K in RejectionKind]: number };
}

type Phase = 'hello' | 'messages' | 'rpc' | 'snapshot-begin' | 'snapshot-data' | 'snapshot-done' | 'closed';

/** How long a refused peer gets to read our last frame before the socket is destroyed. */
const LINGER_MS = 1000;

export class InboundConnection {
  private phase: Phase = 'hello';
  private peer: NodeId | null = null;
  private assembly: SnapshotAssembly | null = null;
  private reservation: SnapshotReservation | null = null;
  /** Requests accepted whose answer has not yet been flushed to the kernel. */
  private rpcInFlight = 0;
  /** Requests whose handler has not settled. */
  private rpcRunning = 0;
  private isPausedForDrain = false;
  private handshakeTimer: NodeJS.Timeout | null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly decoder: FrameDecoder;

  /** `handshakeRemainingMs`: what is left of the deadline that started when the TCP connection was accepted. */
  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: InboundContext,
    handshakeRemainingMs: number,
  ) {
    // Until we know who is speaking, a frame can only be a HELLO, which is small.
    this.decoder = new FrameDecoder(ctx.maxHelloBytes);
    this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), Math.max(0, handshakeRemainingMs));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.onIdle());
    socket.on('error', (err) => ctx.log.log('socket-error', 'debug', 'inbound connection error', { peer: this.peer, error: err.message }));
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
      this.refuse('malformed', err instanceof CodecError ? err.message : `internal error: ${String(err)}`);
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
        // A stream speaks for the node whose handshake was accepted; a message claiming
        // otherwise would let an accepted peer forge another member's votes or appends.
        if (m.from !== this.peer || m.to !== this.ctx.selfId) {
          throw new CodecError(`message ${m.from}→${m.to} on the stream from ${this.peer}`);
        }
        this.ctx.counters.messagesReceived++;
        this.ctx.deliver(m);
        return;
      }
      case 'rpc':
        if (type !== FrameType.rpcRequest) throw new CodecError(`unexpected frame type ${type} on an rpc stream`);
        this.onRpcRequest(frame);
        return;
      case 'snapshot-begin':
        if (type !== FrameType.snapshotBegin) throw new CodecError(`expected a snapshot header, got frame type ${type}`);
        this.onSnapshotBegin(frame);
        return;
      case 'snapshot-data':
        if (type === FrameType.snapshotChunk) {
          const assembly = this.assembly!;
          const [received, allocated] = [assembly.receivedBytes, assembly.allocatedBytes];
          assembly.add(frame.subarray(5));
          this.ctx.counters.snapshotBytesInProgress += assembly.receivedBytes - received;
          this.ctx.counters.snapshotBytesAllocated += assembly.allocatedBytes - allocated;
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
    const { selfId } = this.ctx;
    if (hello.version !== PROTOCOL_VERSION) return this.refuse('handshake', `protocol version ${hello.version} is not ${PROTOCOL_VERSION}`, hello);
    // Catches a peer list with the wrong address before membership is even asked.
    if (hello.to !== selfId) return this.refuse('handshake', `this is node "${selfId}", not "${hello.to}"`, hello);
    if (this.ctx.checkHello !== undefined) {
      const refusal = this.ask(() => this.ctx.checkHello!(hello, this.helloPeer()), 'checkHello');
      if (refusal !== null) return this.refuse('notMember', refusal, hello);
    } else {
      const clusterId = this.ctx.clusterId();
      if (hello.clusterId !== clusterId) return this.refuse('cluster', `cluster "${hello.clusterId}" is not "${clusterId}"`, hello);
    }
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.peer = hello.from;
    this.phase = hello.purpose === 'messages' ? 'messages' : hello.purpose === 'rpc' ? 'rpc' : 'snapshot-begin';
    this.decoder.maxFrameBytes = this.ctx.maxFrameBytes;
    this.socket.setTimeout(this.ctx.idleTimeoutMs);
    this.socket.write(encodeHelloAck());
  }

  private helloPeer(): HelloPeer {
    let certificate: tls.PeerCertificate | null = null;
    if (this.socket instanceof tls.TLSSocket) {
      const c = this.socket.getPeerCertificate();
      // Node answers {} when there is none; the listener refuses those anyway with TLS on.
      certificate = c !== null && Object.keys(c).length > 0 ? c : null;
    }
    return { certificate, remoteAddress: this.socket.remoteAddress };
  }

  private onRpcRequest(frame: Buffer): void {
    const { id, payload } = decodeRpcRequest(frame);
    if (this.rpcInFlight >= this.ctx.maxRpcInFlight) {
      this.ctx.counters.rejected.rpcInFlight++;
      this.ctx.log.log('rpcInFlight', 'warn', 'refused an rpc request: too many in flight', { peer: this.peer, limit: this.ctx.maxRpcInFlight });
      this.reply(id, 'refused', Buffer.from(`too many requests in flight (limit ${this.ctx.maxRpcInFlight})`), null);
      return;
    }
    // Copy: the frame is a view of a socket buffer and the answer may take a while.
    const request = Uint8Array.prototype.slice.call(payload);
    // In flight until the answer has left our buffers for the kernel, so the cap bounds the
    // answers a client that does not read can make us hold, not only the handlers running.
    this.rpcInFlight++;
    this.rpcRunning++;
    const written = (): void => {
      this.rpcInFlight--;
    };
    // new Promise catches a handler that throws instead of rejecting.
    new Promise<Uint8Array>((resolve) => resolve(this.ctx.answer(this.peer!, request))).then(
      (answer) => {
        this.rpcRunning--;
        this.reply(id, 'ok', answer, written);
      },
      (err: unknown) => {
        this.rpcRunning--;
        this.reply(id, 'error', Buffer.from(err instanceof Error ? err.message : String(err)), written);
      },
    );
  }

  private reply(id: number, status: RpcStatus, bytes: Uint8Array, onWritten: (() => void) | null): void {
    if (this.phase === 'closed') {
      onWritten?.();
      return;
    }
    const [header, body] = encodeRpcResponse(id, status, bytes);
    // One writev: two writes would wake the caller twice, the first time for a header alone.
    this.socket.cork();
    this.socket.write(header!);
    const hasRoom = this.socket.write(body!, () => onWritten?.());
    this.socket.uncork();
    // Refusals are small but unbounded in number: stop reading the requests of a client that
    // does not read its answers until it catches up. (Requests already in one socket read are
    // still handled; the in-flight cap bounds what they cost.)
    if (!hasRoom && !this.isPausedForDrain) {
      this.isPausedForDrain = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.isPausedForDrain = false;
        this.socket.resume();
      });
    }
  }

  private onSnapshotBegin(frame: Buffer): void {
    const r = frameBody(frame);
    const total = r.varint('snapshot length');
    const m = decodeMessage(frame.subarray(r.offset));
    if (m.type !== 'InstallSnapshot' || m.from !== this.peer || m.to !== this.ctx.selfId || m.snapshot.data.length !== 0) {
      throw new CodecError(`snapshot header is not an InstallSnapshot from ${this.peer} with empty data`);
    }
    // Both checks come BEFORE the first byte is set aside for the snapshot.
    if (this.ctx.acceptSnapshot !== undefined) {
      const refusal = this.ask(() => this.ctx.acceptSnapshot!(m), 'acceptSnapshot');
      if (refusal !== null) return this.refuse('snapshot', refusal);
    }
    const reservation = this.ctx.snapshots.admit(m.from, total);
    if (typeof reservation === 'string') return this.refuse('snapshot', reservation);
    this.reservation = reservation;
    this.assembly = new SnapshotAssembly(m, total);
    this.ctx.counters.snapshotBytesAllocated += this.assembly.allocatedBytes;
    this.phase = 'snapshot-data';
  }

  private onSnapshotEnd(crc: number): void {
    const assembly = this.assembly!;
    let m: Message;
    try {
      m = assembly.finish(crc);
    } catch (err) {
      this.discardAssembly();
      this.ctx.log.log('snapshot-discarded', 'error', 'snapshot discarded', { peer: this.peer, error: String(err) });
      this.closeWith(encodeSnapshotAck(false));
      return;
    }
    this.releaseAssembly();
    this.phase = 'snapshot-done';
    this.ctx.counters.snapshotsReceived++;
    this.ctx.deliver(m);
    this.socket.write(encodeSnapshotAck(true));
  }

  /**
   * Counts, logs (rate-limited) and closes. A handshake refusal is answered with HELLO_REJECT
   * and a snapshot refusal with SNAP_ACK(0), so an honest dialer's log says why; anything else
   * is destroyed at once.
   */
  private refuse(kind: RejectionKind, reason: string, hello?: Hello): void {
    if (this.phase === 'closed') return;
    this.ctx.counters.rejected[kind]++;
    const fields = { peer: hello?.from ?? this.peer, remote: this.socket.remoteAddress, reason };
    switch (kind) {
      case 'handshake':
      case 'cluster':
      case 'notMember':
        this.ctx.log.log(kind, 'error', 'refused a peer handshake', fields);
        this.closeWith(encodeHelloReject(reason));
        return;
      case 'snapshot':
        // Routine, not a fault: a member that just restarted refuses a leader it does not know
        // yet, or one too many at once, and the leader sends again later (warn, rate-limited).
        this.ctx.log.log(kind, 'warn', 'refused a snapshot stream', fields);
        this.closeWith(encodeSnapshotAck(false));
        return;
      case 'idle':
        // GOODBYE tells the dialer this is housekeeping, not a failure, and that we read
        // nothing after it: every request we read was answered before it (we idle only with
        // no handler running), so anything the dialer still waits for may be sent again.
        this.ctx.log.log(kind, 'debug', 'closing an idle peer connection', fields);
        this.closeWith(encodeGoodbye());
        return;
      default:
        this.ctx.log.log(kind, 'error', 'closing a peer connection', fields);
        this.phase = 'closed';
        this.discardAssembly();
        this.socket.destroy();
    }
  }

  /**
   * Ends the stream (after `last`, if any) and destroys it if the peer has not hung up within
   * LINGER_MS. A fixed timer, not the socket's inactivity timeout: a peer that keeps sending
   * after our FIN must not keep its connection.
   */
  private closeWith(last: Buffer): void {
    this.phase = 'closed';
    this.discardAssembly();
    this.socket.end(last);
    this.socket.setTimeout(0);
    this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER_MS);
  }

  private onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    if (this.phase !== 'hello') return;
    this.refuse('timeout', `no handshake within the deadline`);
  }

  private onIdle(): void {
    switch (this.phase) {
      case 'closed':
      case 'hello':
        return; // the linger timer or the handshake deadline governs
      case 'rpc':
        // Silence while a handler works is its time, not idleness. (An answer stuck because
        // the client does not read is not: that stream IS idle.)
        if (this.rpcRunning > 0) {
          this.socket.setTimeout(this.ctx.idleTimeoutMs);
          return;
        }
        break;
      default:
        break;
    }
    this.refuse('idle', `no traffic for ${this.ctx.idleTimeoutMs} ms`);
  }

  /** Calls a user hook; a throw is a refusal, never an exception out of a socket handler. */
  private ask<T>(hook: () => T, name: string): T | string {
    try {
      return hook();
    } catch (err) {
      return `${name} threw: ${String(err)}`;
    }
  }

  private onClose(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.handshakeTimer = null;
    this.lingerTimer = null;
    this.phase = 'closed';
    if (this.discardAssembly()) this.ctx.log.log('snapshot-interrupted', 'warn', 'snapshot transfer interrupted; discarded', { peer: this.peer });
  }

  /** Drops a transfer in progress and its reservation; true if there was one. */
  private discardAssembly(): boolean {
    if (this.assembly === null) return false;
    this.releaseAssembly();
    this.ctx.counters.snapshotsDiscarded++;
    return true;
  }

  private releaseAssembly(): void {
    const assembly = this.assembly;
    if (assembly !== null) {
      this.assembly = null;
      this.ctx.counters.snapshotBytesInProgress -= assembly.receivedBytes;
      this.ctx.counters.snapshotBytesAllocated -= assembly.allocatedBytes;
    }
    if (this.reservation !== null) {
      this.ctx.snapshots.release(this.reservation);
      this.reservation = null;
    }
  }

  /** Closes at once (the transport is stopping); an unfinished snapshot is discarded. */
  destroy(): void {
    this.socket.destroy();
  }
}
