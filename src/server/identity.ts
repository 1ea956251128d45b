// Who a node is and which cluster it belongs to (API.md "Security"), kept in `<data-dir>/cluster.json`:
//
//   {"version":2, "nodeId":"n1", "clusterId":"<32 hex>"|null, "founding":"f-<32 hex>"|null,
//    "founders":["n1","n2","n3"], "peers":{"n2":"HOST:PORT", ...}, "token":"<64 hex>"|null}
//
// `token` is the SHA-256 of the --initial-cluster-token the cluster was founded with: a restart
// that names a different token is pointed at another cluster's data dir and refused (a restart
// otherwise ignores --initial-cluster, which may lag behind membership changes).
//
// The cluster id is random: the first leader draws it and commits it through the log (a registry
// record, member-registry.ts), so every member, and every later member through snapshots, holds
// the same one. Until a founder has applied it, it presents its founding id instead: a hash of
// the --initial-cluster it was started with and --initial-cluster-token, the same on every
// founder. A peer is heard only if it presents our cluster id, or, when one side has not learned
// the cluster id yet, the founding id and is a founder. So once a cluster has its id, a node of
// another cluster (another data dir, another cluster started with the same flags) is refused at
// the handshake, whatever its log says.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { NodeId } from '../raft/index.js';
import { ID_PATTERN, ADDR_PATTERN, hostPortText, type HostPort } from './address.js';

export const CLUSTER_FILE = 'cluster.json';
export const CLUSTER_ID_PATTERN = /^[0-9a-f]{32}$/;
const FOUNDING_PATTERN = /^f-[0-9a-f]{32}$/;
/** What pre-version-2 cluster files (no founding id) present until their cluster commits an id. */
export const LEGACY_FOUNDING = 'f-legacy';

export interface ClusterFile {
  readonly version: 2;
  readonly nodeId: NodeId;
  readonly clusterId: string | null;
  readonly founding: string | null;
  readonly founders: readonly NodeId[];
  readonly peers: Readonly<Record<NodeId, string>>;
  /** SHA-256 (hex) of the founding --initial-cluster-token; null for joiners and old files. */
  readonly token: string | null;
}

export class ClusterFileError extends Error {}

/** The founding id of a cluster started with `initialCluster` and `token`: equal on every founder. */
export function foundingId(initialCluster: ReadonlyMap<NodeId, HostPort>, token: string): string {
  const lines = [...initialCluster].map(([id, a]) => `${id}=${hostPortText(a)}`).sort();
  return `f-${createHash('sha256').update(`${token}\n${lines.join('\n')}`).digest('hex').slice(0, 32)}`;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newClusterId(): string {
  return randomBytes(16).toString('hex');
}

/** Reads and checks `<dir>/cluster.json`; null if there is none. Errors name the file. */
export function readClusterFile(dir: string): ClusterFile | null {
  const path = `${dir}/${CLUSTER_FILE}`;
  if (!existsSync(path)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ClusterFileError(`${path} is unreadable: ${(err as Error).message}`);
  }
  const bad = (why: string): never => {
    throw new ClusterFileError(`${path} is damaged: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not a JSON object');
  const o = raw as Record<string, unknown>;
  const peersRaw = o['peers'];
  if (typeof peersRaw !== 'object' || peersRaw === null || Array.isArray(peersRaw)) bad('"peers" is not an object');
  const peers: Record<NodeId, string> = {};
  for (const [id, addr] of Object.entries(peersRaw as Record<string, unknown>)) {
    if (!ID_PATTERN.test(id) || typeof addr !== 'string' || !ADDR_PATTERN.test(addr)) bad(`peer ${JSON.stringify(id)} has a bad id or address`);
    peers[id] = addr as string;
  }
  if (o['version'] === undefined) {
    // Version 1 (before cluster ids): {"id", "peers"}.
    const id = o['id'];
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) bad('"id" is not a node id');
    return { version: 2, nodeId: id as string, clusterId: null, founding: LEGACY_FOUNDING, founders: Object.keys(peers), peers, token: null };
  }
  if (o['version'] !== 2) bad(`unknown version ${JSON.stringify(o['version'])}`);
  const nodeId = o['nodeId'];
  if (typeof nodeId !== 'string' || !ID_PATTERN.test(nodeId)) bad('"nodeId" is not a node id');
  const clusterId = o['clusterId'];
  if (clusterId !== null && (typeof clusterId !== 'string' || !CLUSTER_ID_PATTERN.test(clusterId))) bad('"clusterId" is not 32 hex digits or null');
  const founding = o['founding'];
  if (founding !== null && (typeof founding !== 'string' || !(FOUNDING_PATTERN.test(founding) || founding === LEGACY_FOUNDING))) bad('"founding" is malformed');
  const founders = o['founders'];
  if (!Array.isArray(founders) || !founders.every((f) => typeof f === 'string' && ID_PATTERN.test(f))) bad('"founders" is not a list of node ids');
  if (clusterId === null && founding === null) bad('neither a cluster id nor a founding id');
  const token = o['token'] ?? null;
  if (token !== null && (typeof token !== 'string' || !/^[0-9a-f]{64}$/.test(token))) bad('"token" is not a SHA-256');
  return { version: 2, nodeId: nodeId as string, clusterId: clusterId as string | null, founding: founding as string | null, founders: founders as string[], peers, token: token as string | null };
}

export function encodeClusterFile(f: ClusterFile): string {
  return `${JSON.stringify(f, null, 2)}\n`;
}

/** The identity a node presents and checks in peer handshakes; `clusterId` is learned once. */
export class ClusterIdentity {
  private id: string | null;

  constructor(
    clusterId: string | null,
    readonly founding: string | null,
    readonly founders: ReadonlySet<NodeId>,
  ) {
    this.id = clusterId;
  }

  get clusterId(): string | null {
    return this.id;
  }

  /** Learns the cluster id (from the log or a join); returns true if it is new. */
  learn(clusterId: string): boolean {
    if (this.id !== null) return false;
    this.id = clusterId;
    return true;
  }

  /** What this node says in its own handshakes. */
  presented(): string {
    return this.id ?? this.founding ?? '';
  }

  /** Null if a peer `from` presenting `presented` belongs to this cluster, else why not. */
  refusal(presented: string, from: NodeId): string | null {
    if (this.id !== null && presented === this.id) return null;
    if (this.founders.has(from)) {
      // A founder that has not applied the cluster id yet still presents the founding id.
      if (this.founding !== null && presented === this.founding) return null;
      // We have not applied it yet ourselves: a founder that has is believed, and we learn the
      // id from the log it is about to replicate to us.
      if (this.id === null && CLUSTER_ID_PATTERN.test(presented)) return null;
    }
    return `cluster "${presented.slice(0, 40)}" is not this cluster ("${this.presented()}")`;
  }
}
