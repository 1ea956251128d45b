// The outbound message stream to one peer: a lazy connection, a bounded queue, batched writes
// and reconnects with exponential backoff and jitter. Raft tolerates lost messages (§5.3: the
// leader retries AppendEntries; candidates re-request votes), so when the peer is slow or down
// the queue does not grow past its bound: new messages are DROPPED and counted, and the runtime
// is told the peer is unreachable so the core falls back to probing it.
//
// The receiver closes a stream that has been silent both ways for its idle timeout, and says so
// with GOODBYE first. That is housekeeping, not a failure: the sender drops the connection at
// once, without backoff or an unreachable report, and redials when it next has a message.
import { dial } from './dial.js';
import { FrameDecoder, FrameType, PROTOCOL_VERSION, decodeHelloAck, encodeHello, frameBody, frameType } from './frame.js';
import type net from 'node:net';
import type { DialSettings } from './dial.js';
import type { NodeId } from '../raft/types.js';
import type { PeerAddress, TransportLogger } from './types.js';

export interface PeerSenderSettings {
  readonly selfId: NodeId;
  /** Read at each dial. */
  readonly clusterId: () => string;
  readonly dialing: DialSettings;
  readonly logger: TransportLogger;
  readonly random: () => number;
  readonly maxQueueBytes: number;
  readonly maxQueueMessages: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly dialTimeoutMs: number;
  /** Called at most once per episode of unreachability. */
  readonly onUnreachable: (peerId: NodeId) => void;
}

/**
 * Bytes handed to the socket before we wait for 'drain'. Large enough that one writev carries
 * many messages, small enough that the socket's own buffer stays a rounding error next to the
 * queue bound.
 */
const SOCKET_BUFFER_BYTES = 1024 * 1024;
/** The dialer reads only handshake replies; anything large on this socket is a protocol error. */
const MAX_REPLY_FRAME_BYTES = 4096;

type State = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

export class PeerSender {
  private state: State = 'idle';
  private socket: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private isUnreachableReported = false;
  private isFlushScheduled = false;
  // A FIFO as an array and a head index: shift() would copy the array on every message.
  /**
   * The message format the peer decodes, from its last HELLO_ACK (frame.ts, MESSAGE_FORMAT); the
   * first until it has answered. Messages are encoded for it when queued: should the peer come
   * back as an older version, what was queued for the newer one is refused with the stream, and
   * the next stream's answer sets it right (Raft takes a lost message in its stride).
   */
  messageFormat = 1;
  private queue: (Buffer | Buffer[] | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  private queuedBytes = 0;
  private messagesSent = 0;
  private bytesSent = 0;
  /** Batches handed to the socket (each one writev, or one write). */
  private writes = 0;
  private messagesDropped = 0;
  private bytesDropped = 0;
  private reconnects = 0;
  private hasDialed = false;

  constructor(
    readonly peerId: NodeId,
    private address: PeerAddress,
    private readonly settings: PeerSenderSettings,
  ) {}

  get isConnected(): boolean {
    return this.state === 'open';
  }

  get peerAddress(): PeerAddress {
    return this.address;
  }

  /** Queues one encoded frame, or drops it when the queue is at its bound. */
  enqueue(frame: Buffer | Buffer[], bytes: number): void {
    if (this.state === 'closed') return;
    if (this.queue.length - this.head >= this.settings.maxQueueMessages || this.queuedBytes + bytes > this.settings.maxQueueBytes) {
      this.drop(bytes);
      return;
    }
    this.queue.push(frame);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    if (this.state === 'idle') this.connect();
    else if (this.state === 'open') this.scheduleFlush();
  }

  /** True when no message could be queued now; lets the caller skip encoding it at all. */
  get isFull(): boolean {
    return this.queue.length - this.head >= this.settings.maxQueueMessages || this.queuedBytes >= this.settings.maxQueueBytes;
  }

  /** Counts a message dropped before it reached the queue, and tells the runtime once. */
  drop(bytes: number): void {
    this.countDrop(bytes);
    this.reportUnreachable();
  }

  countDrop(bytes: number): void {
    this.messagesDropped++;
    this.bytesDropped += bytes;
  }

  /** Points the stream at a new address; the current connection, if any, is replaced. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.failures = 0;
    this.socket?.destroy();
  }

  close(): void {
    this.state = 'closed';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.destroy();
    this.socket = null;
    this.queue = [];
    this.sizes = [];
    this.head = 0;
    this.queuedBytes = 0;
  }

  stats() {
    return {
      connected: this.state === 'open',
      messagesSent: this.messagesSent,
      bytesSent: this.bytesSent,
      writes: this.writes,
      messagesDropped: this.messagesDropped,
      bytesDropped: this.bytesDropped,
      queuedMessages: this.queue.length - this.head,
      queuedBytes: this.queuedBytes,
      reconnects: this.reconnects,
    };
  }

  private connect(): void {
    const { logger } = this.settings;
    this.state = 'connecting';
    if (this.hasDialed) this.reconnects++;
    this.hasDialed = true;
    const { socket, readyEvent } = dial(this.address, this.settings.dialing, SOCKET_BUFFER_BYTES);
    this.socket = socket;
    const decoder = new FrameDecoder(MAX_REPLY_FRAME_BYTES);
    const dialTimer = setTimeout(() => {
      logger.debug('dial timed out', { peer: this.peerId, ...this.address });
      socket.destroy();
    }, this.settings.dialTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => this.onReply(socket, frame, dialTimer));
      } catch (err) {
        logger.error('bad frame from peer; closing', { peer: this.peerId, error: String(err) });
        socket.destroy();
      }
    });
    socket.on('drain', () => this.flush());
    socket.on('error', (err) => {
      // The first failure of an episode is worth a warning; the retries that follow are noise.
      const log = this.isUnreachableReported ? logger.debug : logger.warn;
      log.call(logger, 'peer connection error', { peer: this.peerId, ...this.address, error: err.message });
    });
    socket.on('close', () => {
      clearTimeout(dialTimer);
      this.onClose(socket);
    });
    socket.once(readyEvent, () => {
      socket.write(
        encodeHello({ version: PROTOCOL_VERSION, clusterId: this.settings.clusterId(), from: this.settings.selfId, to: this.peerId, purpose: 'messages' }),
      );
    });
  }

  private onReply(socket: net.Socket, frame: Buffer, dialTimer: NodeJS.Timeout): boolean {
    const type = frameType(frame);
    if (type === FrameType.helloAck && this.state === 'connecting' && socket === this.socket) {
      clearTimeout(dialTimer);
      this.messageFormat = decodeHelloAck(frame);
      this.state = 'open';
      this.failures = 0;
      this.isUnreachableReported = false;
      this.settings.logger.debug('peer connected', { peer: this.peerId, ...this.address });
      this.flush();
      return true;
    }
    if (type === FrameType.goodbye && this.state === 'open' && socket === this.socket) {
      // The peer closed this stream as idle. Let it go now: anything sent on it from here on
      // would be discarded unread, so the next message, or what is queued, goes on a new one.
      this.socket = null;
      this.state = 'idle';
      socket.end();
      this.settings.logger.debug('peer closed an idle stream', { peer: this.peerId, ...this.address });
      if (this.queue.length > this.head) this.connect();
      return false;
    }
    if (type === FrameType.helloReject) {
      const reason = frameBody(frame).shortString('reason');
      this.settings.logger.error('peer refused our handshake', { peer: this.peerId, ...this.address, reason });
    } else {
      this.settings.logger.error('unexpected frame from peer; closing', { peer: this.peerId, type });
    }
    socket.destroy();
    return false;
  }

  private onClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.state === 'closed') return;
    this.reportUnreachable();
    this.failures++;
    // Exponential backoff with "equal jitter": half the window fixed, half random, so a
    // cluster restarting together does not redial in lockstep.
    const exponent = Math.min(this.failures - 1, 20);
    const window = Math.min(this.settings.reconnectMaxMs, this.settings.reconnectMinMs * 2 ** exponent);
    const delayMs = window / 2 + this.settings.random() * (window / 2);
    this.state = 'backoff';
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state !== 'backoff') return;
      this.state = 'idle';
      // Lazy: redial only when there is something to say.
      if (this.queue.length > this.head) this.connect();
    }, delayMs);
  }

  private reportUnreachable(): void {
    if (this.isUnreachableReported) return;
    this.isUnreachableReported = true;
    try {
      this.settings.onUnreachable(this.peerId);
    } catch (err) {
      this.settings.logger.error('onUnreachable threw', { peer: this.peerId, error: String(err) });
    }
  }

  private scheduleFlush(): void {
    if (this.isFlushScheduled) return;
    this.isFlushScheduled = true;
    // Unless flush() is called first, the queue is written once the current loop turn's I/O
    // callbacks and microtasks are done: a socket write to a local peer costs ~100 µs here, and
    // messages nobody waits for (a new commit index, heartbeats) should not delay what somebody
    // does wait for, like the HTTP reply of the write just applied. Everything queued until then
    // lands in one writev. The runtime flushes messages on a write's critical path at once.
    setImmediate(() => {
      this.isFlushScheduled = false;
      this.flush();
    });
  }

  /** Writes the queue now (a latency-critical burst is complete); otherwise scheduleFlush() does. */
  flush(): void {
    const socket = this.socket;
    if (this.state !== 'open' || socket === null || socket.writableNeedDrain) return;
    if (this.queue.length === this.head) return;
    socket.cork();
    this.writes++;
    let isFull = false;
    while (this.head < this.queue.length && !isFull) {
      const frame = this.queue[this.head]!;
      const bytes = this.sizes[this.head]!;
      this.queue[this.head] = undefined;
      this.head++;
      this.queuedBytes -= bytes;
      if (Array.isArray(frame)) {
        for (let i = 0; i < frame.length; i++) isFull = !socket.write(frame[i]!);
      } else {
        isFull = !socket.write(frame);
      }
      this.messagesSent++;
      this.bytesSent += bytes;
    }
    socket.uncork();
    if (this.head === this.queue.length) {
      this.queue = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}
