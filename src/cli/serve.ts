// `raftkv serve`: one raftkv node. Every flag is validated before anything is read, bound or
// written (one line naming the flag, exit 2); then src/server/node-server.ts starts the node (a
// failed start exits 1 with one line and leaves nothing changed). SIGTERM/SIGINT stop it cleanly:
// stop accepting, finish or fail in-flight requests, flush, exit 0. SIGHUP re-reads --auth-file.
import { LOG_LEVELS } from '../server/logger.js';
import { DEFAULT_NODE_CONFIG, StartError, checkInitialCluster, hasClusterFile, startNode, type NodeConfig, type TlsFiles } from '../server/node-server.js';
import { hostPortText, type HostPort } from '../server/address.js';
import { choiceValue, intFlag, optionalString, parseFlags, parseHostPort, parseInitialCluster, requireString, UsageError, type FlagTable, type ParsedFlags } from './flags.js';
import type { Io } from './cluster.js';
import { listenForPartitions } from './cluster-hook.js';
import { AUTO_COMPACTION_MODES, DEFAULT_AUTO_COMPACTION, parseAutoCompactionRetention, type AutoCompaction } from '../server/coordination.js';

const ON_OFF = ['on', 'off'] as const;

const D = DEFAULT_NODE_CONFIG;

/** Every flag of `raftkv serve` (each also from RAFTKV_<NAME>); help, completion and docs come from here. */
export const SERVE_FLAGS: FlagTable = {
  id: { type: 'string', value: 'ID', description: 'this node\'s id: 1-64 letters, digits, ".", "_" or "-" (required)' },
  'data-dir': { type: 'string', value: 'DIR', isFile: true, description: 'where the log, snapshots and cluster file live (required)' },
  'peer-addr': { type: 'string', value: 'HOST:PORT', description: 'address the peer channel binds (required)' },
  'client-addr': { type: 'string', value: 'HOST:PORT', description: 'address the HTTP API binds (required)' },
  'advertise-peer-addr': { type: 'string', value: 'HOST:PORT', description: 'peer address other members dial, if not the bind address', default: '--peer-addr' },
  'advertise-client-addr': { type: 'string', value: 'HOST:PORT', description: 'client address given to clients and members, if not the bind address', default: '--client-addr' },
  'initial-cluster': { type: 'string', value: 'ID=HOST:PORT,...', description: 'the founding members and their peer addresses (a new founder only; a restart reads its data dir)' },
  'initial-cluster-token': { type: 'string', value: 'TOKEN', description: 'names the founding cluster, so two clusters started from the same list never mix', default: D.initialClusterToken },
  join: { type: 'string', value: 'URL', description: 'join a running cluster through this member\'s client URL (after `raftkv members add`)' },
  'join-token': { type: 'string', value: 'TOKEN', description: 'bearer token for --join on a cluster with tokens' },
  learner: { type: 'boolean', description: 'join as a learner (a non-voting member)' },
  'heartbeat-ms': { type: 'string', value: 'MS', description: 'leader heartbeat interval', default: String(D.heartbeatMs) },
  'election-ms': { type: 'string', value: 'MS', description: 'election timeout (more than twice --heartbeat-ms)', default: String(D.electionMs) },
  'snapshot-entries': { type: 'string', value: 'N', description: 'take a snapshot after this many applied entries', default: String(D.snapshotEntries) },
  'snapshot-log-bytes': { type: 'string', value: 'BYTES', description: 'or sooner, once the entries applied since the last snapshot hold this many bytes', default: String(D.snapshotLogBytes) },
  'snapshot-catch-up-entries': { type: 'string', value: 'N', description: 'entries kept in the log after a snapshot, for slow followers', default: String(D.snapshotCatchUpEntries) },
  'snapshot-log-percent': { type: 'string', value: 'PCT', description: 'also snapshot when the log since the last one exceeds this share of the state\'s bytes (0: off)', default: String(D.snapshotLogPercent) },
  'snapshot-stagger': { type: 'string', value: 'on|off', description: 'members snapshot apart: after a start, the first snapshot by count waits 1 + slot/n times as long (slot: this member\'s place in id order)', default: 'on', choices: ON_OFF },
  'snapshot-idle-ms': { type: 'string', value: 'MS', description: 'a member idle this long compacts its log once it is a quarter of the way to the next snapshot (0: off)', default: String(D.snapshotIdleMs) },
  'request-timeout-ms': { type: 'string', value: 'MS', description: 'deadline of one client request', default: String(D.requestTimeoutMs) },
  'body-timeout-ms': { type: 'string', value: 'MS', description: 'a request (headers and body, or a raftkv-mux frame) must arrive within this once begun', default: String(D.bodyTimeoutMs) },
  'max-pending': { type: 'string', value: 'N', description: 'proposals in flight before new writes are refused', default: String(D.maxPending) },
  'max-key-bytes': { type: 'string', value: 'BYTES', description: 'largest key', default: String(D.maxKeyBytes) },
  'max-value-bytes': { type: 'string', value: 'BYTES', description: 'largest value', default: String(D.maxValueBytes) },
  'max-response-bytes': { type: 'string', value: 'BYTES', description: 'largest response (a list or range is cut there)', default: String(D.maxResponseBytes) },
  'quota-bytes': { type: 'string', value: 'BYTES', description: 'store size at which the NO_SPACE alarm refuses writes', default: String(D.quotaBytes) },
  'wal-segment-bytes': { type: 'string', value: 'BYTES', description: 'size of one write-ahead log segment file', default: String(D.walSegmentBytes) },
  'max-client-connections': { type: 'string', value: 'N', description: 'open client connections at most', default: String(D.maxClientConnections) },
  'max-watchers': { type: 'string', value: 'N', description: 'open watches at most', default: String(D.maxWatchers) },
  'watch-progress-ms': { type: 'string', value: 'MS', description: 'interval of progress events to idle watchers', default: String(D.watchProgressMs) },
  'max-peer-connections': { type: 'string', value: 'N', description: 'open inbound peer connections at most', default: String(D.maxPeerConnections) },
  'cert-file': { type: 'string', value: 'FILE', isFile: true, description: 'HTTPS certificate of the client port (PEM)' },
  'key-file': { type: 'string', value: 'FILE', isFile: true, description: 'its private key (PEM)' },
  'trusted-ca-file': { type: 'string', value: 'FILE', isFile: true, description: 'CA that signs client certificates (with --client-cert-auth)' },
  'client-cert-auth': { type: 'boolean', description: 'require a client certificate signed by --trusted-ca-file' },
  'peer-cert-file': { type: 'string', value: 'FILE', isFile: true, description: 'this member\'s certificate for mutual TLS between members (PEM)' },
  'peer-key-file': { type: 'string', value: 'FILE', isFile: true, description: 'its private key (PEM)' },
  'peer-trusted-ca-file': { type: 'string', value: 'FILE', isFile: true, description: 'CA that signs every member\'s peer certificate' },
  'auth-file': { type: 'string', value: 'FILE', isFile: true, description: 'tokens and their permissions (JSON, docs/security.md); re-read on SIGHUP' },
  'cors-origins': { type: 'string', value: 'ORIGIN,...', description: 'browser origins allowed to call the API' },
  'log-level': { type: 'string', value: 'LEVEL', description: 'least level logged (JSON lines on stdout)', default: 'info', choices: LOG_LEVELS },
  'auto-compaction-mode': { type: 'string', value: 'MODE', description: 'how the leader compacts history: by revisions kept or by age', default: DEFAULT_AUTO_COMPACTION.mode, choices: AUTO_COMPACTION_MODES },
  'auto-compaction-retention': { type: 'string', value: 'N|DURATION', description: 'revisions kept (revision mode) or a duration like 1h (periodic mode); 0 turns compaction off', default: String(DEFAULT_AUTO_COMPACTION.retention) },
  'etcd-addr': { type: 'string', value: 'HOST:PORT', description: 'also serve the etcd v3 gRPC API here (docs/etcd.md)' },
  'cluster-control': { type: 'boolean', description: 'set by `raftkv cluster` alone, for its dashboard\'s partitions (over the IPC channel it opens); refused otherwise' },
};

const UNSPECIFIED_HOSTS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const ORIGIN_PATTERN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9a-fA-F:]+\](:\d{1,5})?$/;

/** Reads and checks every flag; throws UsageError (one line naming the flag) on the first problem. */
/** A node's configuration, and whether `raftkv cluster` started it (its partition control). */
export interface ServeConfig extends NodeConfig {
  readonly clusterControl: boolean;
}

export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const flags = parseFlags(argv, SERVE_FLAGS, env);
  if (flags.positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${flags.positionals[0]}"`);
  const id = requireString(flags, 'id');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new UsageError(`--id must be 1-64 letters, digits, '.', '_' or '-', not "${id}"`);
  const dataDir = requireString(flags, 'data-dir');
  const peerAddr = parseHostPort(requireString(flags, 'peer-addr'), 'peer-addr');
  const clientAddr = parseHostPort(requireString(flags, 'client-addr'), 'client-addr');
  const advertisePeerAddr = advertised(flags, 'advertise-peer-addr', 'peer-addr', peerAddr);
  const advertiseClientAddr = advertised(flags, 'advertise-client-addr', 'client-addr', clientAddr);
  const joinUrl = optionalString(flags, 'join') ?? null;
  if (joinUrl !== null && !/^https?:\/\/[^/\s]+$/.test(joinUrl)) throw new UsageError(`--join must be a node's client URL like http://HOST:PORT, not "${joinUrl}"`);
  const heartbeatMs = intFlag(flags, 'heartbeat-ms', DEFAULT_NODE_CONFIG.heartbeatMs, 1, 60_000);
  const electionMs = intFlag(flags, 'election-ms', DEFAULT_NODE_CONFIG.electionMs, 2, 600_000);
  if (electionMs <= heartbeatMs * 2) throw new UsageError(`--election-ms (${electionMs}) must be more than twice --heartbeat-ms (${heartbeatMs})`);
  const logLevel = choiceValue(flags, 'log-level', LOG_LEVELS, 'info');
  const initial = optionalString(flags, 'initial-cluster');
  const initialCluster = initial === undefined ? null : parseInitialCluster(initial);
  const token = optionalString(flags, 'initial-cluster-token') ?? null;
  if (token !== null && !/^[\x21-\x7e]{1,256}$/.test(token)) throw new UsageError('--initial-cluster-token must be 1-256 printable characters without spaces');
  // A first start needs a founding cluster that names this node (a restart reads its data dir).
  if (joinUrl === null && !hasClusterFile(dataDir)) {
    const problem = checkInitialCluster({ id, initialCluster, advertisePeerAddr });
    if (problem !== null) throw new UsageError(problem);
  }
  const maxValueBytes = intFlag(flags, 'max-value-bytes', DEFAULT_NODE_CONFIG.maxValueBytes, 1, 64 << 20);
  const maxResponseBytes = intFlag(flags, 'max-response-bytes', DEFAULT_NODE_CONFIG.maxResponseBytes, 64 << 10, 1 << 30);
  if (maxResponseBytes < maxValueBytes + 4096) {
    throw new UsageError(`--max-response-bytes (${maxResponseBytes}) must leave room for one value of --max-value-bytes (${maxValueBytes}) and its record`);
  }
  return {
    clusterControl: flags.values['cluster-control'] === true,
    id,
    dataDir,
    peerAddr,
    clientAddr,
    advertisePeerAddr,
    advertiseClientAddr,
    initialCluster,
    initialClusterToken: token,
    join: joinUrl,
    joinToken: joinToken(flags),
    isLearner: flags.values['learner'] === true,
    heartbeatMs,
    electionMs,
    snapshotEntries: intFlag(flags, 'snapshot-entries', DEFAULT_NODE_CONFIG.snapshotEntries, 10, 100_000_000),
    snapshotLogBytes: intFlag(flags, 'snapshot-log-bytes', DEFAULT_NODE_CONFIG.snapshotLogBytes, 1 << 20, 2 ** 40),
    snapshotCatchUpEntries: intFlag(flags, 'snapshot-catch-up-entries', DEFAULT_NODE_CONFIG.snapshotCatchUpEntries, 0, 100_000_000),
    snapshotLogPercent: intFlag(flags, 'snapshot-log-percent', DEFAULT_NODE_CONFIG.snapshotLogPercent, 0, 10_000),
    snapshotIdleMs: intFlag(flags, 'snapshot-idle-ms', DEFAULT_NODE_CONFIG.snapshotIdleMs, 0, 86_400_000),
    snapshotStagger: choiceValue(flags, 'snapshot-stagger', ON_OFF, DEFAULT_NODE_CONFIG.snapshotStagger ? 'on' : 'off') === 'on',
    requestTimeoutMs: intFlag(flags, 'request-timeout-ms', DEFAULT_NODE_CONFIG.requestTimeoutMs, 10, 600_000),
    bodyTimeoutMs: intFlag(flags, 'body-timeout-ms', DEFAULT_NODE_CONFIG.bodyTimeoutMs, 1000, 600_000),
    maxPending: intFlag(flags, 'max-pending', DEFAULT_NODE_CONFIG.maxPending, 1, 10_000_000),
    maxKeyBytes: intFlag(flags, 'max-key-bytes', DEFAULT_NODE_CONFIG.maxKeyBytes, 1, 1 << 20),
    maxValueBytes,
    maxResponseBytes,
    quotaBytes: intFlag(flags, 'quota-bytes', DEFAULT_NODE_CONFIG.quotaBytes, 1 << 20, 2 ** 50),
    walSegmentBytes: intFlag(flags, 'wal-segment-bytes', DEFAULT_NODE_CONFIG.walSegmentBytes, 1 << 20, 1 << 30),
    maxClientConnections: intFlag(flags, 'max-client-connections', DEFAULT_NODE_CONFIG.maxClientConnections, 1, 1_000_000),
    maxPeerConnections: intFlag(flags, 'max-peer-connections', DEFAULT_NODE_CONFIG.maxPeerConnections, 4, 100_000),
    maxWatchers: intFlag(flags, 'max-watchers', DEFAULT_NODE_CONFIG.maxWatchers, 1, 1_000_000),
    watchProgressMs: intFlag(flags, 'watch-progress-ms', DEFAULT_NODE_CONFIG.watchProgressMs, 100, 60_000),
    clientTls: clientTls(flags),
    peerTls: peerTls(flags),
    authFile: optionalString(flags, 'auth-file') ?? null,
    corsOrigins: corsOrigins(flags),
    logLevel,
    autoCompaction: autoCompaction(flags),
    etcdAddr: etcdAddr(flags, peerAddr, clientAddr),
  };
}

/** --etcd-addr HOST:PORT: where the etcd v3 gRPC API listens (src/etcd/); a port of its own. */
function etcdAddr(flags: ParsedFlags, peer: HostPort, client: HostPort): HostPort | null {
  const text = optionalString(flags, 'etcd-addr');
  if (text === undefined) return null;
  const a = parseHostPort(text, 'etcd-addr');
  for (const [name, other] of [['peer-addr', peer], ['client-addr', client]] as const) {
    if (other.port === a.port && (other.host === a.host || UNSPECIFIED_HOSTS.has(other.host) || UNSPECIFIED_HOSTS.has(a.host))) {
      throw new UsageError(`--etcd-addr ${hostPortText(a)} must not share a port with --${name} ${hostPortText(other)}`);
    }
  }
  return a;
}

/** etcd's flags: --auto-compaction-mode periodic|revision, --auto-compaction-retention (0: off). */
function autoCompaction(flags: ParsedFlags): AutoCompaction {
  const modeText = optionalString(flags, 'auto-compaction-mode');
  const retentionText = optionalString(flags, 'auto-compaction-retention');
  if (modeText === undefined && retentionText === undefined) return DEFAULT_AUTO_COMPACTION;
  const mode = choiceValue(flags, 'auto-compaction-mode', AUTO_COMPACTION_MODES, 'periodic');
  if (retentionText === undefined) throw new UsageError('--auto-compaction-retention is required with --auto-compaction-mode (0 turns compaction off)');
  const retention = parseAutoCompactionRetention(mode, retentionText);
  if (retention === null) {
    throw new UsageError(
      mode === 'revision'
        ? `--auto-compaction-retention must be a number of revisions in revision mode, not "${retentionText}"`
        : `--auto-compaction-retention must be a duration like 1h, 30m or 90s (a bare number is hours) in periodic mode, not "${retentionText}"`,
    );
  }
  return { mode, retention };
}

/** The advertised address: given, or the bind address unless that is 0.0.0.0 / :: (not dialable). */
function advertised(flags: ParsedFlags, flag: string, bindFlag: string, bind: HostPort): HostPort {
  const given = optionalString(flags, flag);
  if (given !== undefined) {
    const a = parseHostPort(given, flag);
    if (UNSPECIFIED_HOSTS.has(a.host)) throw new UsageError(`--${flag} must be an address others can dial, not ${hostPortText(a)}`);
    return a;
  }
  if (UNSPECIFIED_HOSTS.has(bind.host)) throw new UsageError(`--${flag} is required when --${bindFlag} binds ${hostPortText(bind)}: other members cannot dial that`);
  return bind;
}

function clientTls(flags: ParsedFlags): NodeConfig['clientTls'] {
  const cert = optionalString(flags, 'cert-file');
  const key = optionalString(flags, 'key-file');
  const ca = optionalString(flags, 'trusted-ca-file') ?? null;
  const clientCertAuth = flags.values['client-cert-auth'] === true;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(`--${cert === undefined ? 'cert-file' : 'key-file'} is required with --${cert === undefined ? 'key-file' : 'cert-file'}`);
  if (cert === undefined) {
    if (ca !== null || clientCertAuth) throw new UsageError(`--${ca !== null ? 'trusted-ca-file' : 'client-cert-auth'} needs --cert-file and --key-file (HTTPS)`);
    return null;
  }
  if (clientCertAuth && ca === null) throw new UsageError('--client-cert-auth needs --trusted-ca-file (the CA that signs client certificates)');
  return { certFile: cert, keyFile: key!, trustedCaFile: ca, clientCertAuth };
}

function peerTls(flags: ParsedFlags): TlsFiles | null {
  const names = ['peer-cert-file', 'peer-key-file', 'peer-trusted-ca-file'] as const;
  const values = names.map((n) => optionalString(flags, n));
  if (values.every((v) => v === undefined)) return null;
  const missing = names.find((_, i) => values[i] === undefined);
  if (missing !== undefined) throw new UsageError(`--${missing} is required with the other peer TLS flags (mutual TLS needs a certificate, its key and the trusted CA)`);
  return { certFile: values[0]!, keyFile: values[1]!, trustedCaFile: values[2]! };
}

function joinToken(flags: ParsedFlags): string | null {
  const v = optionalString(flags, 'join-token')?.trim();
  if (v === undefined || v === '') return null;
  if (!/^[\x21-\x7e]{1,4096}$/.test(v)) throw new UsageError('--join-token must be printable characters without spaces');
  return v;
}

function corsOrigins(flags: ParsedFlags): string[] {
  const v = optionalString(flags, 'cors-origins');
  if (v === undefined) return [];
  const origins = v.split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const o of origins) if (!ORIGIN_PATTERN.test(o)) throw new UsageError(`--cors-origins lists "${o}", which is not an origin like https://app.example.com`);
  return origins;
}

let hasServed = false;

export async function runServe(argv: string[], io: Io): Promise<number> {
  const cfg = parseServeConfig(argv);
  const blockedPeers = cfg.clusterControl ? listenForPartitions() : undefined;
  let node;
  try {
    // This process's start is after the node's previous run stopped, the first time only (a
    // second node in the same process could have been running a moment ago).
    const downSinceMs = hasServed ? undefined : 0;
    hasServed = true;
    node = await startNode(cfg, {
      notice: (line) => io.stderr(`${line}\n`),
      ...(downSinceMs !== undefined ? { downSinceMs } : {}),
      // gRPC loads only for a node that serves it (every other command would pay ~90 ms for it).
      ...(cfg.etcdAddr ? { frontEnds: [(await import('../etcd/server.js')).startEtcdServer] } : {}),
      ...(blockedPeers !== undefined ? { blockedPeers } : {}),
    });
  } catch (err) {
    if (err instanceof StartError) {
      io.stderr(`raftkv: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const running = node;
  // The last guard, not the first: every reply path catches its own errors, so a rejection
  // nobody handled is a bug. Logged loudly, it must not end a node that is otherwise healthy
  // (Node's default would exit with the cluster's quorum one member short).
  const onUnhandled = (reason: unknown): void => {
    io.stderr(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), node: cfg.id, msg: 'unhandled promise rejection (a bug; the node carries on)', error: reason instanceof Error ? reason.stack : String(reason) })}\n`);
  };
  process.on('unhandledRejection', onUnhandled);
  const onTerm = (): void => void running.stop('SIGTERM');
  const onInt = (): void => void running.stop('SIGINT');
  const onHup = (): void => running.reloadAuth();
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);
  const info = await running.stopped;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  process.off('SIGHUP', onHup);
  process.off('unhandledRejection', onUnhandled);
  return info.code;
}
