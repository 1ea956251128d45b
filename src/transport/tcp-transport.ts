// The TCP transport between raftkv nodes: one listening socket for everything peers send us
// (listener.ts, inbound-connection.ts), one lazy outbound message stream per peer
// (peer-sender.ts), one rpc stream per peer (rpc-client.ts) and a separate connection per
// snapshot transfer (snapshot-sender.ts), all dialed by dial.ts, over mutual TLS when `tls` is
// set. send() never blocks and never throws; every failure becomes a log line, a counter, a
// dropped message and, where the core should know, a callback. Who may connect is decided by
// checkHello, and what a connection may make us hold is bounded (see types.ts).
import { encodedLength, MessageEncoder } from './codec.js';
import { dialSettings } from './dial.js';
import { InboundConnection } from './inbound-connection.js';
import { PeerListener } from './listener.js';
import { LogLimiter } from './log-limiter.js';
import { PeerSender } from './peer-sender.js';
import { RpcClient, RpcError } from './rpc-client.js';
import { SnapshotAdmission } from './snapshot-admission.js';
import { sendSnapshot } from './snapshot-sender.js';
import { consoleLogger } from './logger.js';
import { DEFAULT_TRANSPORT_OPTIONS } from './types.js';
import type net from 'node:net';
import type { DialSettings } from './dial.js';
import type { InboundContext, InboundCounters } from './inbound-connection.js';
import type { InstallSnapshot, Message, NodeId } from '../raft/types.js';
import type { PeerAddress, PeerStats, TcpTransportOptions, Transport, TransportLogger, TransportStats } from './types.js';

type ResolvedOptions = Required<
  Omit<TcpTransportOptions, 'peers' | 'onUnreachable' | 'onSnapshotStatus' | 'onRequest' | 'logger' | 'clusterId' | 'checkHello' | 'acceptSnapshot' | 'tls'>
>;

/** Limits that must be positive: 0 would turn a bound into "refuse everything" or "never". */
const LIMITS = ['handshakeTimeoutMs', 'maxHelloBytes', 'idleTimeoutMs', 'maxInboundConnections', 'maxRpcInFlight', 'maxLogLinesPerSecond', 'maxSnapshotBytes'] as const;

interface SnapshotSlot {
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

export class TcpTransport implements Transport {
  readonly id: NodeId;
  private readonly options: ResolvedOptions;
  private readonly rpcClients = new Map<NodeId, RpcClient>();
  private readonly logger: TransportLogger;
  private readonly encoder: MessageEncoder;
  private readonly senders = new Map<NodeId, PeerSender>();
  private readonly snapshots = new Map<NodeId, SnapshotSlot>();
  private readonly snapshotCounts = new Map<NodeId, { sent: number; failed: number }>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly counters: InboundCounters = {
    messagesReceived: 0,
    bytesReceived: 0,
    snapshotsReceived: 0,
    snapshotsDiscarded: 0,
    snapshotBytesInProgress: 0,
    snapshotBytesAllocated: 0,
    rejected: { handshake: 0, cluster: 0, notMember: 0, tls: 0, limit: 0, timeout: 0, idle: 0, malformed: 0, snapshot: 0, rpcInFlight: 0 },
  };
  private readonly log: LogLimiter;
  private readonly snapshotAdmission: SnapshotAdmission;
  private readonly dialing: DialSettings;
  private readonly listener: PeerListener;
  private readonly inboundContext: InboundContext;
  /** What this node presents in its handshakes now, read at each dial and each check. */
  private readonly clusterId: () => string;
  private droppedUnknownPeer = 0;
  private tlsDialFailures = 0;
  private isStarted = false;
  private isStopped = false;

  constructor(private readonly init: TcpTransportOptions) {
    this.id = init.id;
    this.logger = init.logger ?? consoleLogger(init.id);
    this.options = {
      ...DEFAULT_TRANSPORT_OPTIONS,
      random: Math.random,
      ...withoutUndefined(init),
    } as ResolvedOptions;
    const o = this.options;
    if (o.snapshotChunkBytes + 1 > o.maxFrameBytes) {
      throw new RangeError('snapshotChunkBytes must be below maxFrameBytes');
    }
    for (const name of LIMITS) {
      if (!Number.isSafeInteger(o[name]) || o[name] < 1) throw new RangeError(`${name} must be a positive integer, got ${o[name]}`);
    }
    this.encoder = new MessageEncoder(o.entryCacheBytes);
    this.log = new LogLimiter(this.logger, o.maxLogLinesPerSecond);
    const clusterId = init.clusterId ?? DEFAULT_TRANSPORT_OPTIONS.clusterId;
    // send() never throws, and it may dial: a throwing getter is logged, and we present ''.
    this.clusterId =
      typeof clusterId === 'string'
        ? () => clusterId
        : () => {
            try {
              return clusterId();
            } catch (err) {
              this.log.log('clusterId', 'error', 'the clusterId option threw', { error: String(err) });
              return '';
            }
          };
    this.snapshotAdmission = new SnapshotAdmission(o.maxSnapshotBytes);
    // Throws here, at construction, on unreadable PEM: a node must not start half-secure.
    this.dialing = dialSettings(init.tls, (err) => {
      this.tlsDialFailures++;
      this.log.log('tls-dial', 'warn', 'TLS failed dialing a peer', { error: err.code ?? err.message });
    });
    this.inboundContext = {
      selfId: this.id,
      clusterId: this.clusterId,
      checkHello: init.checkHello,
      acceptSnapshot: init.acceptSnapshot,
      maxHelloBytes: o.maxHelloBytes,
      maxFrameBytes: o.maxFrameBytes,
      idleTimeoutMs: o.idleTimeoutMs,
      maxRpcInFlight: o.maxRpcInFlight,
      snapshots: this.snapshotAdmission,
      log: this.log,
      counters: this.counters,
      deliver: (m) => this.deliver(m),
      answer: (from, payload) => {
        const handler = this.init.onRequest;
        if (handler === undefined || this.isStopped) return Promise.reject(new Error('this node takes no requests'));
        return handler(from, payload);
      },
    };
    this.listener = new PeerListener({
      host: o.listenHost,
      port: o.listenPort,
      tls: init.tls,
      maxConnections: o.maxInboundConnections,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      log: this.log,
      counters: this.counters,
      onAccepted: (socket, remainingMs) => this.onConnection(socket, remainingMs),
    });
    for (const [id, address] of init.peers ?? []) this.addPeer(id, address);
  }

  /** Listens on listenHost:listenPort. Rejects only if the port cannot be bound. */
  async start(): Promise<void> {
    if (this.isStarted) return;
    await this.listener.start();
    this.isStarted = true;
    this.logger.info('transport listening', { ...this.address(), tls: this.init.tls !== undefined });
  }

  /** The bound address (the real port when listenPort was 0). */
  address(): PeerAddress {
    return this.listener.address();
  }

  send(m: Message): void {
    if (this.isStopped) return;
    const sender = this.senders.get(m.to);
    if (sender === undefined) {
      this.droppedUnknownPeer++;
      this.logger.debug('dropped a message to an unknown peer', { to: m.to, type: m.type });
      return;
    }
    if (m.from !== this.id) {
      // The receiver would close the whole stream over it (a stream speaks for one node).
      sender.countDrop(0);
      this.logger.error('message not from this node; dropped', { from: m.from, to: m.to, type: m.type });
      return;
    }
    if (m.type === 'InstallSnapshot') {
      this.startSnapshot(m, sender.peerAddress);
      return;
    }
    if (sender.isFull) {
      sender.drop(0);
      return;
    }
    let frame: Buffer | Buffer[];
    try {
      frame = this.encoder.encode(m, sender.messageFormat);
    } catch (err) {
      sender.countDrop(0);
      this.logger.error('cannot encode a message; dropped', { to: m.to, type: m.type, error: String(err) });
      return;
    }
    const bytes = encodedLength(frame);
    if (bytes - 4 > this.options.maxFrameBytes) {
      // The receiver would close the stream on it; better to lose one message than the stream.
      sender.countDrop(bytes);
      this.logger.error('message exceeds the frame limit; dropped', { to: m.to, type: m.type, bytes });
      return;
    }
    sender.enqueue(frame, bytes);
  }

  /** Writes every queued message now instead of at the end of the current event-loop turn. */
  flush(): void {
    for (const sender of this.senders.values()) sender.flush();
  }

  /**
   * Sends a request to a peer's onRequest over the rpc stream and resolves with its answer.
   * Rejects with RpcError (maybeDelivered tells whether the peer may have acted on it).
   */
  request(to: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const client = this.rpcClients.get(to);
    if (this.isStopped || client === undefined) return Promise.reject(new RpcError(`unknown peer ${to}`, false));
    return client.request(payload, timeoutMs);
  }

  addPeer(id: NodeId, address: PeerAddress): void {
    if (this.isStopped || id === this.id) return;
    const existing = this.senders.get(id);
    if (existing !== undefined) {
      existing.setAddress(address);
      this.rpcClients.get(id)?.setAddress(address);
      return;
    }
    this.rpcClients.set(
      id,
      new RpcClient(address, {
        selfId: this.id,
        peerId: id,
        clusterId: this.clusterId,
        dialing: this.dialing,
        maxFrameBytes: this.options.maxFrameBytes,
        dialTimeoutMs: this.options.dialTimeoutMs,
        logger: this.logger,
      }),
    );
    const { options } = this;
    this.senders.set(
      id,
      new PeerSender(id, address, {
        selfId: this.id,
        clusterId: this.clusterId,
        dialing: this.dialing,
        logger: this.logger,
        random: options.random,
        maxQueueBytes: options.maxQueueBytes,
        maxQueueMessages: options.maxQueueMessages,
        reconnectMinMs: options.reconnectMinMs,
        reconnectMaxMs: options.reconnectMaxMs,
        dialTimeoutMs: options.dialTimeoutMs,
        onUnreachable: (peerId) => this.init.onUnreachable?.(peerId),
      }),
    );
  }

  /** Forgets a peer: its queue is discarded and its connections and snapshot transfer end. */
  removePeer(id: NodeId): void {
    this.senders.get(id)?.close();
    this.senders.delete(id);
    this.rpcClients.get(id)?.close();
    this.rpcClients.delete(id);
    this.snapshots.get(id)?.abort.abort();
  }

  async stop(): Promise<void> {
    if (this.isStopped) return;
    this.isStopped = true;
    for (const sender of this.senders.values()) sender.close();
    for (const client of this.rpcClients.values()) client.close();
    const transfers = [...this.snapshots.values()];
    for (const slot of transfers) slot.abort.abort();
    for (const conn of this.inbound) conn.destroy();
    await Promise.all([...transfers.map((t) => t.done), this.listener.close()]);
    this.log.close();
  }

  stats(): TransportStats {
    const peers = new Map<NodeId, PeerStats>();
    for (const [id, sender] of this.senders) {
      const snaps = this.snapshotCounts.get(id);
      peers.set(id, {
        ...sender.stats(),
        snapshotsSent: snaps?.sent ?? 0,
        snapshotsFailed: snaps?.failed ?? 0,
        isSnapshotInFlight: this.snapshots.has(id),
      });
    }
    const cache = this.encoder.entryCache.stats();
    const { rejected, ...counters } = this.counters;
    let connectionsRejected = 0;
    for (const [kind, n] of Object.entries(rejected)) if (kind !== 'idle' && kind !== 'rpcInFlight') connectionsRejected += n;
    return {
      peers,
      ...counters,
      connectionsRejected,
      rejected: { ...rejected },
      inboundConnections: this.listener.openConnections,
      tlsDialFailures: this.tlsDialFailures,
      logLinesSuppressed: this.log.suppressed,
      snapshotBytesReserved: this.snapshotAdmission.reservedBytes,
      droppedUnknownPeer: this.droppedUnknownPeer,
      entriesEncoded: cache.entriesEncoded,
      entryCacheHits: cache.hits,
      entryCacheBytes: cache.slabBytes,
    };
  }

  private onConnection(socket: net.Socket, handshakeRemainingMs: number): void {
    if (this.isStopped) {
      socket.destroy();
      return;
    }
    const conn = new InboundConnection(socket, this.inboundContext, handshakeRemainingMs);
    this.inbound.add(conn);
    socket.on('close', () => this.inbound.delete(conn));
  }

  private deliver(m: Message): void {
    if (this.isStopped) return;
    try {
      this.init.onMessage(m);
    } catch (err) {
      this.logger.error('onMessage threw', { from: m.from, type: m.type, error: String(err) });
    }
  }

  /** One transfer per peer at a time: a second InstallSnapshot while one streams is dropped. */
  private startSnapshot(m: InstallSnapshot, address: PeerAddress): void {
    const peer = m.to;
    if (this.snapshots.has(peer)) {
      this.senders.get(peer)?.countDrop(m.snapshot.data.length);
      this.logger.debug('snapshot transfer already in flight; dropped', { peer });
      return;
    }
    const abort = new AbortController();
    const done = sendSnapshot({
      message: m,
      address,
      clusterId: this.clusterId(),
      dialing: this.dialing,
      encoder: this.encoder,
      chunkBytes: this.options.snapshotChunkBytes,
      idleTimeoutMs: this.options.snapshotIdleTimeoutMs,
      logger: this.logger,
      signal: abort.signal,
    }).then((ok) => {
      this.snapshots.delete(peer);
      const counts = this.snapshotCounts.get(peer) ?? { sent: 0, failed: 0 };
      if (ok) counts.sent++;
      else counts.failed++;
      this.snapshotCounts.set(peer, counts);
      // After stop() the runtime is gone; nobody is left to act on the outcome.
      if (this.isStopped) return;
      try {
        this.init.onSnapshotStatus?.(peer, ok);
      } catch (err) {
        this.logger.error('onSnapshotStatus threw', { peer, error: String(err) });
      }
    });
    this.snapshots.set(peer, { abort, done });
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(o) as (keyof T)[]) {
    if (o[key] !== undefined) out[key] = o[key];
  }
  return out;
}
