// The transport's contract with the runtime: options, callbacks, logger and statistics. The
// runtime (node/) hands every Message of a Ready to `send()` only AFTER the Ready is durable;
// the transport may drop any message (Raft tolerates loss, §5.3) but never reorders messages
// on the stream to one peer, and never blocks the caller.
import type { Message, NodeId } from '../raft/types.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Structured log sink; `fields` carries ids, addresses and error text. */
export interface TransportLogger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/**
 * What the runtime (and the simulator's network) implement alike, so the node can be driven by
 * the real TCP transport or an in-memory one.
 */
export interface Transport {
  start(): Promise<void>;
  /** Never blocks, never throws: queues `m` for `m.to` or drops it. */
  send(m: Message): void;
  /** Writes what send() queued now rather than at the end of the current event-loop turn. */
  flush?(): void;
  addPeer(id: NodeId, address: PeerAddress): void;
  removePeer(id: NodeId): void;
  stop(): Promise<void>;
}

export interface TcpTransportOptions {
  /** This node's id; sent in every handshake. */
  readonly id: NodeId;
  /**
   * Connections naming another cluster are refused, so a misconfigured address cannot join two
   * clusters' logs together.
   * @default 'raftkv'
   */
  readonly clusterId?: string;
  readonly listenHost: string;
  /** 0 picks a free port; read it back from `address()` after `start()`. */
  readonly listenPort: number;
  readonly peers?: ReadonlyMap<NodeId, PeerAddress>;
  /** Every decoded Message addressed to this node. Exceptions are caught and logged. */
  readonly onMessage: (m: Message) => void;
  /**
   * A peer could not be reached (dial failed, connection lost, or its queue overflowed). Called
   * once per episode: again only after a connection to it has succeeded. The runtime passes it
   * to the core's reportUnreachable so replication falls back to probing.
   */
  readonly onUnreachable?: (peerId: NodeId) => void;
  /** An InstallSnapshot to `peerId` was delivered and acknowledged (true) or failed (false). */
  readonly onSnapshotStatus?: (peerId: NodeId, ok: boolean) => void;
  /** Answers a peer's request() (for example a client request a follower forwards to the leader). */
  readonly onRequest?: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
  readonly logger?: TransportLogger;
  /** Uniform in [0, 1); drives reconnect jitter. Inject a seeded one for replayable tests. */
  readonly random?: () => number;
  /** @default 64 MiB */
  readonly maxQueueBytes?: number;
  /** @default 4096 */
  readonly maxQueueMessages?: number;
  /** A frame longer than this is refused (sender drops it, receiver closes). @default 16 MiB */
  readonly maxFrameBytes?: number;
  /** @default 50 */
  readonly reconnectMinMs?: number;
  /** @default 2000 */
  readonly reconnectMaxMs?: number;
  /** A dial not acknowledged within this is abandoned. @default 2000 */
  readonly dialTimeoutMs?: number;
  /** @default 1 MiB */
  readonly snapshotChunkBytes?: number;
  /** A snapshot stream idle this long (no progress either way) is aborted. @default 30000 */
  readonly snapshotIdleTimeoutMs?: number;
  /** Largest snapshot a receiver assembles in memory. @default 1 GiB */
  readonly maxSnapshotBytes?: number;
  /** Budget of the encoded-entry cache shared by all peers. @default 32 MiB */
  readonly entryCacheBytes?: number;
}

export const DEFAULT_TRANSPORT_OPTIONS = {
  clusterId: 'raftkv',
  maxQueueBytes: 64 * 1024 * 1024,
  maxQueueMessages: 4096,
  maxFrameBytes: 16 * 1024 * 1024,
  reconnectMinMs: 50,
  reconnectMaxMs: 2000,
  dialTimeoutMs: 2000,
  snapshotChunkBytes: 1024 * 1024,
  snapshotIdleTimeoutMs: 30_000,
  maxSnapshotBytes: 1024 * 1024 * 1024,
  entryCacheBytes: 32 * 1024 * 1024,
} as const;

export interface PeerStats {
  readonly connected: boolean;
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly messagesDropped: number;
  /** Counts only drops after encoding; a message refused by a full queue is not encoded. */
  readonly bytesDropped: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Dials attempted after the first (failures and lost connections). */
  readonly reconnects: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  readonly isSnapshotInFlight: boolean;
}

export interface TransportStats {
  readonly peers: ReadonlyMap<NodeId, PeerStats>;
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  /** Inbound connections closed for a bad handshake, bad frame or oversize frame. */
  readonly connectionsRejected: number;
  /** Messages addressed to a node that is not a known peer. */
  readonly droppedUnknownPeer: number;
  readonly snapshotsReceived: number;
  /** Inbound snapshot transfers discarded (interrupted, bad CRC, too large). */
  readonly snapshotsDiscarded: number;
  /** Bytes of inbound snapshot transfers still being assembled. */
  readonly snapshotBytesInProgress: number;
  readonly entriesEncoded: number;
  readonly entryCacheHits: number;
  /** Memory held by the encoded-entry cache (bounded by entryCacheBytes). */
  readonly entryCacheBytes: number;
}
