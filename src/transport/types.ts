// The transport's contract with the runtime: options, callbacks, logger and statistics. When
// each message of a Ready may be sent is the Ready contract's to say (raft/types.ts, `Ready`);
// the transport may drop any message (Raft tolerates loss, §5.3) but never reorders messages
// on the stream to one peer, and never blocks the caller. Everything a peer can make the
// receiver hold (connections, handshake bytes, idle streams, requests in flight, snapshot
// memory) has a bound here, so no client, careless or hostile, can exhaust the process.
import type tls from 'node:tls';
import type { Hello } from './frame.js';
import type { InstallSnapshot, Message, NodeId } from '../raft/types.js';

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

/** PEM contents (not paths) for mutual TLS between peers. */
export interface TransportTlsOptions {
  /** This node's certificate: presented by the listener and by every dial. */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The only authority trusted for peers, both ways: a peer's certificate must chain to it. */
  readonly ca: string | Buffer;
}

/** What the listener knows of the far end when it checks a handshake. */
export interface HelloPeer {
  /** The verified client certificate with TLS on; null on plain TCP. */
  readonly certificate: tls.PeerCertificate | null;
  readonly remoteAddress: string | undefined;
}

/** A refusal reason (logged, sent back in HELLO_REJECT), or null to accept. */
export type HelloCheck = (hello: Hello, peer: HelloPeer) => string | null;

/** Called at SNAP_BEGIN, before any memory is set aside: a refusal reason, or null to accept. */
export type SnapshotCheck = (header: InstallSnapshot) => string | null;

export interface TcpTransportOptions {
  /** This node's id; sent in every handshake. */
  readonly id: NodeId;
  /**
   * What this node presents in its own handshakes, read at each dial (a node learns its
   * cluster's id after it starts when it joins). Unless `checkHello` is given, connections
   * naming another cluster are refused, so a misconfigured address cannot join two clusters'
   * logs together.
   * @default 'raftkv'
   */
  readonly clusterId?: string | (() => string);
  /**
   * Decides who may speak once the version and the `to` id have been checked. Replaces the
   * default check (the hello's clusterId equals ours); the server uses it for cluster identity
   * and membership. Refusals answer HELLO_REJECT and count as `rejected.notMember`.
   */
  readonly checkHello?: HelloCheck;
  /**
   * Decides whether an inbound snapshot stream may proceed (the server accepts them only from
   * the current leader). A refusal counts as `rejected.snapshot`; nothing is allocated.
   */
  readonly acceptSnapshot?: SnapshotCheck;
  /**
   * Mutual TLS between peers. The listener refuses, in the TLS layer and before any frame is
   * read, a connection without a certificate signed by `ca`; every dial presents `cert` and
   * verifies the peer against `ca` and the dialed host name or IP.
   */
  readonly tls?: TransportTlsOptions;
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
  /**
   * Largest snapshot a receiver assembles in memory, and the budget of the sizes announced by
   * all inbound transfers in progress together.
   * @default 1 GiB
   */
  readonly maxSnapshotBytes?: number;
  /**
   * Budget of the encoded-entry cache shared by all peers. It holds the entries it encoded too
   * (they confirm a hit), so it also keeps that many entries' data alive. A follower further
   * behind than it reaches gets entries encoded again, not lost ones.
   * @default 8 MiB
   */
  readonly entryCacheBytes?: number;
  /**
   * An inbound connection that has not completed our HELLO this long after it was accepted
   * (TLS handshake included) is destroyed.
   * @default 5000
   */
  readonly handshakeTimeoutMs?: number;
  /** Largest frame accepted before the handshake is (a hello is at most 771 bytes). @default 1024 */
  readonly maxHelloBytes?: number;
  /**
   * An accepted inbound stream with no bytes either way for this long is closed; its sender
   * redials when it next has something to say.
   * @default 60000
   */
  readonly idleTimeoutMs?: number;
  /** Inbound connections held at once (every kind, TLS handshakes included); more are destroyed at once. @default 256 */
  readonly maxInboundConnections?: number;
  /** Requests being answered at once on one rpc connection; more are refused at once. @default 256 */
  readonly maxRpcInFlight?: number;
  /** Log lines per second per kind of inbound failure; the rest are counted and summarized. @default 10 */
  readonly maxLogLinesPerSecond?: number;
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
  entryCacheBytes: 8 * 1024 * 1024,
  handshakeTimeoutMs: 5000,
  maxHelloBytes: 1024,
  idleTimeoutMs: 60_000,
  maxInboundConnections: 256,
  maxRpcInFlight: 256,
  maxLogLinesPerSecond: 10,
} as const;

export interface PeerStats {
  readonly connected: boolean;
  readonly messagesSent: number;
  readonly bytesSent: number;
  /** Batches of messages handed to the socket at once (one writev each). */
  readonly writes: number;
  readonly messagesDropped: number;
  /** Counts only drops after encoding; a message refused by a full queue is not encoded. */
  readonly bytesDropped: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Dials attempted after the first (after a failure, a lost connection or an idle close). */
  readonly reconnects: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  readonly isSnapshotInFlight: boolean;
}

/** Inbound refusals by reason. */
export interface TransportRejections {
  /** A well-formed HELLO with the wrong protocol version or naming another node as `to`. */
  readonly handshake: number;
  /** A HELLO naming another cluster (the default check, when no checkHello is given). */
  readonly cluster: number;
  /** A HELLO that checkHello refused (not a member, another cluster, ...). */
  readonly notMember: number;
  /** Connections (with TLS on) that ended before the TLS handshake completed: no or an untrusted certificate, not TLS at all. */
  readonly tls: number;
  /** Connections destroyed at once because maxInboundConnections were open. */
  readonly limit: number;
  /** Connections that did not complete the handshake within handshakeTimeoutMs. */
  readonly timeout: number;
  /** Accepted streams closed after idleTimeoutMs without a byte either way (not counted in connectionsRejected). */
  readonly idle: number;
  /** Undecodable, oversize or out-of-place frames, or a message that lies about its sender. */
  readonly malformed: number;
  /** Snapshot streams refused at SNAP_BEGIN: acceptSnapshot, one per peer, too large, or over the total budget. */
  readonly snapshot: number;
  /** Rpc requests answered at once with an error because maxRpcInFlight were being answered (not counted in connectionsRejected). */
  readonly rpcInFlight: number;
}

export interface TransportStats {
  readonly peers: ReadonlyMap<NodeId, PeerStats>;
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  /** Inbound connections closed by a refusal: the sum of `rejected` but for idle and rpcInFlight. */
  readonly connectionsRejected: number;
  readonly rejected: TransportRejections;
  /** Inbound connections open now (handshakes in progress included). */
  readonly inboundConnections: number;
  /** Our dials that failed in TLS: the peer's certificate was not trusted, or it refused ours. */
  readonly tlsDialFailures: number;
  /** Inbound log lines dropped by the rate limit (maxLogLinesPerSecond). */
  readonly logLinesSuppressed: number;
  /** Messages addressed to a node that is not a known peer. */
  readonly droppedUnknownPeer: number;
  readonly snapshotsReceived: number;
  /** Inbound snapshot transfers discarded (interrupted, bad CRC, too large). */
  readonly snapshotsDiscarded: number;
  /** Bytes received so far by inbound snapshot transfers still being assembled. */
  readonly snapshotBytesInProgress: number;
  /** Sizes announced by the inbound transfers in progress; at most maxSnapshotBytes in total. */
  readonly snapshotBytesReserved: number;
  /** Memory held by inbound transfers in progress: grows with the bytes received, never to the announced size up front. */
  readonly snapshotBytesAllocated: number;
  readonly entriesEncoded: number;
  readonly entryCacheHits: number;
  /** Memory held by the encoded-entry cache (bounded by entryCacheBytes). */
  readonly entryCacheBytes: number;
}
