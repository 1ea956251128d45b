// A node's configuration (what `raftkv serve`'s flags become) with its defaults, and the checks
// of it that need no I/O beyond a look at the data dir.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeId } from '../raft/index.js';
import { DEFAULT_NODE_OPTIONS } from '../node/index.js';
import { hostPortText, type HostPort } from './address.js';
import { CLUSTER_FILE } from './identity.js';
import type { LogLevel } from './logger.js';
import type { AutoCompaction } from './coordination.js';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Trusted CA: required for peers (mutual TLS), and for clients with `clientCertAuth`. */
  readonly trustedCaFile: string | null;
}

export interface NodeConfig {
  readonly id: NodeId;
  readonly dataDir: string;
  /** Where the peer and client ports listen. */
  readonly peerAddr: HostPort;
  readonly clientAddr: HostPort;
  /** What other members and clients are told (differs from the bind address behind 0.0.0.0). */
  readonly advertisePeerAddr: HostPort;
  readonly advertiseClientAddr: HostPort;
  /** The founding voters, for a first start; a restart trusts its data dir (see identity.ts). */
  readonly initialCluster: ReadonlyMap<NodeId, HostPort> | null;
  /** Names the cluster at its founding; a restart that gives another one is refused. Null: not given ('raftkv'). */
  readonly initialClusterToken: string | null;
  /** A running cluster's client URL to ask for membership (first start only). */
  readonly join: string | null;
  /** The admin token --join presents to a cluster with --auth-file. */
  readonly joinToken: string | null;
  readonly isLearner: boolean;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  readonly snapshotEntries: number;
  /** Or fewer entries, once those applied since the last snapshot hold this many bytes. */
  readonly snapshotLogBytes: number;
  readonly snapshotCatchUpEntries: number;
  /** The log since the last snapshot must hold this percent of its size before the next; 0: off. */
  readonly snapshotLogPercent: number;
  /** An idle member (no entry applied for this long) compacts a log a quarter of the way to the next snapshot; 0: off. */
  readonly snapshotIdleMs: number;
  /** Members snapshot apart (runtime.ts, snapshotStagger); false: each at the count, all at once. */
  readonly snapshotStagger?: boolean;
  readonly requestTimeoutMs: number;
  /** A request's body (an HTTP body, a raftkv-mux frame) must arrive within this once begun. */
  readonly bodyTimeoutMs?: number;
  readonly maxPending: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxResponseBytes: number;
  readonly quotaBytes: number;
  readonly walSegmentBytes: number;
  readonly maxClientConnections: number;
  readonly maxPeerConnections: number;
  /** Open watches served at most (GET /v1/watch); more are answered 503. @default 10000 */
  readonly maxWatchers?: number;
  /** How often an idle watch gets a progress event (100 to 60000 ms). @default 5000 */
  readonly watchProgressMs?: number;
  readonly clientTls: (TlsFiles & { readonly clientCertAuth: boolean }) | null;
  readonly peerTls: TlsFiles | null;
  readonly authFile: string | null;
  readonly corsOrigins: readonly string[];
  readonly logLevel: LogLevel;
  /** Where the etcd v3 gRPC API listens (--etcd-addr; src/etcd/); null or absent: not served. */
  readonly etcdAddr?: HostPort | null;
  /** How the leader compacts the store's history. @default DEFAULT_AUTO_COMPACTION (keep 100,000 revisions) */
  readonly autoCompaction?: AutoCompaction;
}

/** Whether `dir` already holds a node (a restart): its cluster.json exists. */
export function hasClusterFile(dir: string): boolean {
  return existsSync(join(dir, CLUSTER_FILE));
}

export const DEFAULT_NODE_CONFIG = {
  initialClusterToken: 'raftkv',
  heartbeatMs: 100,
  electionMs: 1000,
  snapshotEntries: DEFAULT_NODE_OPTIONS.snapshotEntries,
  snapshotLogBytes: DEFAULT_NODE_OPTIONS.snapshotLogBytes,
  snapshotCatchUpEntries: DEFAULT_NODE_OPTIONS.snapshotCatchUpEntries,
  snapshotLogPercent: DEFAULT_NODE_OPTIONS.snapshotLogPercent,
  snapshotIdleMs: DEFAULT_NODE_OPTIONS.snapshotIdleMs,
  snapshotStagger: DEFAULT_NODE_OPTIONS.snapshotStagger,
  requestTimeoutMs: 5000,
  bodyTimeoutMs: 30_000,
  maxPending: 10_000,
  maxKeyBytes: 4096,
  maxValueBytes: 1 << 20,
  maxResponseBytes: 64 << 20,
  quotaBytes: 2 * 1024 ** 3,
  walSegmentBytes: 16 << 20,
  maxClientConnections: 1024,
  maxPeerConnections: 256,
  maxWatchers: 10_000,
  watchProgressMs: 5000,
} as const;

/** What is wrong with --initial-cluster for a founder's first start, or null. */
export function checkInitialCluster(cfg: Pick<NodeConfig, 'id' | 'initialCluster' | 'advertisePeerAddr'>): string | null {
  if (cfg.initialCluster === null) return '--initial-cluster is required to start a new node (or set RAFTKV_INITIAL_CLUSTER), or --join to join a running cluster';
  const mine = cfg.initialCluster.get(cfg.id);
  if (mine === undefined) return `--initial-cluster does not name this node (${cfg.id})`;
  if (mine.host !== cfg.advertisePeerAddr.host || mine.port !== cfg.advertisePeerAddr.port) {
    return `--initial-cluster gives ${cfg.id} the address ${hostPortText(mine)} but its advertised peer address is ${hostPortText(cfg.advertisePeerAddr)}`;
  }
  return null;
}
