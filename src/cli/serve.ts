// `raftkv serve`: one raftkv node. Every flag is validated before anything is written; then the
// storage is opened (a corrupt log refuses to start, naming file and offset), the peer transport
// and the HTTP API start, and SIGTERM/SIGINT stop it cleanly: stop accepting, finish or fail
// in-flight requests, flush, exit 0.
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { RaftNode } from '../node/index.js';
import type { RemovedNotice } from '../raft/index.js';
import { FileStorage, StorageCorruptionError } from '../storage/index.js';
import { TcpTransport } from '../transport/index.js';
import { ApiError } from '../server/errors.js';
import { decodeForwardedRequest, encodeForwardedResponse, peerForwarder } from '../server/forward.js';
import { createApiServer, parseJson, type ForwardedRequest, type ForwardedResponse, type MemberView, type Reply } from '../server/http-api.js';
import { createKvBackend } from '../server/kv-backend.js';
import { createLogger, isLogLevel, LOG_LEVELS, type Logger } from '../server/logger.js';
import { ServiceStateMachine } from '../server/member-registry.js';
import { Registry } from '../server/metrics.js';
import { registerNodeMetrics } from '../server/node-metrics.js';
import { KvService } from '../server/service.js';
import { membershipRoutes, startAutoPromotion } from '../server/membership.js';
import { intFlag, optionalString, parseFlags, parseHostPort, parseInitialCluster, requireString, UsageError, type FlagSpec, type HostPort } from './flags.js';
import type { Io } from './cluster.js';

const SPEC: FlagSpec = {
  id: { type: 'string' },
  'data-dir': { type: 'string' },
  'peer-addr': { type: 'string' },
  'client-addr': { type: 'string' },
  'initial-cluster': { type: 'string' },
  join: { type: 'string' },
  learner: { type: 'boolean' },
  'heartbeat-ms': { type: 'string' },
  'election-ms': { type: 'string' },
  'snapshot-entries': { type: 'string' },
  'snapshot-catch-up-entries': { type: 'string' },
  'request-timeout-ms': { type: 'string' },
  'max-pending': { type: 'string' },
  'max-key-bytes': { type: 'string' },
  'max-value-bytes': { type: 'string' },
  'log-level': { type: 'string' },
};

interface ClusterFile {
  readonly id: string;
  readonly peers: Record<string, string>;
}

interface ServeConfig {
  readonly id: string;
  readonly dataDir: string;
  readonly peerAddr: HostPort;
  readonly clientAddr: HostPort;
  readonly peers: Map<string, HostPort>;
  readonly isNewCluster: boolean;
  /** A running cluster to ask for membership (first start only). */
  readonly join: string | undefined;
  readonly isLearner: boolean;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  readonly snapshotEntries: number;
  readonly snapshotCatchUpEntries: number;
  readonly requestTimeoutMs: number;
  readonly maxPending: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

/** Reads and checks every flag; throws UsageError (one line naming the flag) on the first problem. */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const flags = parseFlags(argv, SPEC, env);
  if (flags.positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${flags.positionals[0]}"`);
  const id = requireString(flags, 'id');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new UsageError(`--id must be 1-64 letters, digits, '.', '_' or '-', not "${id}"`);
  const dataDir = requireString(flags, 'data-dir');
  const peerAddr = parseHostPort(requireString(flags, 'peer-addr'), 'peer-addr');
  const clientAddr = parseHostPort(requireString(flags, 'client-addr'), 'client-addr');
  const joinUrl = optionalString(flags, 'join');
  if (joinUrl !== undefined && !/^https?:\/\/[^/\s]+$/.test(joinUrl)) throw new UsageError(`--join must be a node's client URL like http://HOST:PORT, not "${joinUrl}"`);
  const isLearner = flags.values['learner'] === true;
  const heartbeatMs = intFlag(flags, 'heartbeat-ms', 100, 1, 60_000);
  const electionMs = intFlag(flags, 'election-ms', 1000, 2, 600_000);
  if (electionMs <= heartbeatMs * 2) throw new UsageError(`--election-ms (${electionMs}) must be more than twice --heartbeat-ms (${heartbeatMs})`);
  const logLevel = optionalString(flags, 'log-level') ?? 'info';
  if (!isLogLevel(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`);

  // A restarted node trusts its own data dir over --initial-cluster.
  const clusterFile = join(dataDir, 'cluster.json');
  let peers: Map<string, HostPort>;
  let isNewCluster = false;
  if (existsSync(clusterFile)) {
    let stored: ClusterFile;
    try {
      stored = JSON.parse(readFileSync(clusterFile, 'utf8')) as ClusterFile;
    } catch (err) {
      throw new UsageError(`--data-dir holds an unreadable ${clusterFile}: ${(err as Error).message}`);
    }
    if (stored.id !== id) throw new UsageError(`--data-dir ${dataDir} belongs to node ${stored.id}, not ${id}`);
    peers = new Map(Object.entries(stored.peers).map(([k, v]) => [k, parseHostPort(v, 'initial-cluster')]));
  } else if (joinUrl !== undefined) {
    // Joining: the running cluster tells us its members; their addresses come with the answer.
    peers = new Map();
  } else {
    const initial = optionalString(flags, 'initial-cluster');
    if (initial === undefined) throw new UsageError('--initial-cluster is required to start a new node (or set RAFTKV_INITIAL_CLUSTER)');
    peers = parseInitialCluster(initial);
    const mine = peers.get(id);
    if (mine === undefined) throw new UsageError(`--initial-cluster does not name this node (${id})`);
    if (mine.port !== peerAddr.port || mine.host !== peerAddr.host) {
      throw new UsageError(`--initial-cluster gives ${id} the address ${mine.host}:${mine.port} but --peer-addr is ${peerAddr.host}:${peerAddr.port}`);
    }
    isNewCluster = true;
  }
  return {
    id, dataDir, peerAddr, clientAddr, peers, isNewCluster, heartbeatMs, electionMs, logLevel,
    join: existsSync(clusterFile) ? undefined : joinUrl,
    isLearner,
    snapshotEntries: intFlag(flags, 'snapshot-entries', 10_000, 10, 100_000_000),
    snapshotCatchUpEntries: intFlag(flags, 'snapshot-catch-up-entries', 5_000, 0, 100_000_000),
    requestTimeoutMs: intFlag(flags, 'request-timeout-ms', 5000, 10, 600_000),
    maxPending: intFlag(flags, 'max-pending', 10_000, 1, 10_000_000),
    maxKeyBytes: intFlag(flags, 'max-key-bytes', 4096, 1, 1 << 20),
    maxValueBytes: intFlag(flags, 'max-value-bytes', 1 << 20, 1, 64 << 20),
  };
}

const hostPort = (a: HostPort): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

export async function runServe(argv: string[], io: Io): Promise<number> {
  const cfg = parseServeConfig(argv);
  const logger = createLogger(cfg.logLevel, { node: cfg.id });
  mkdirSync(cfg.dataDir, { recursive: true });
  let storage: FileStorage;
  try {
    storage = await FileStorage.open(cfg.dataDir, { logger: { warn: (msg: string) => logger.warn(msg) } });
  } catch (err) {
    if (err instanceof StorageCorruptionError) {
      io.stderr(`raftkv: refusing to start: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (cfg.isNewCluster) writeClusterFile(cfg);

  const { stateMachine: kvStateMachine, backend } = createKvBackend({ maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes });
  const sm = new ServiceStateMachine(kvStateMachine);
  let node: RaftNode<unknown> | null = null;
  let answerForwarded: ((req: ForwardedRequest) => Promise<ForwardedResponse>) | null = null;
  const transport = new TcpTransport({
    id: cfg.id,
    listenHost: cfg.peerAddr.host,
    listenPort: cfg.peerAddr.port,
    peers: new Map([...cfg.peers].filter(([id]) => id !== cfg.id)),
    onMessage: (m) => node?.receive(m),
    onUnreachable: (peer) => node?.reportUnreachable(peer),
    onSnapshotStatus: (peer, ok) => node?.reportSnapshot(peer, ok),
    onRequest: async (_from, payload) => {
      if (answerForwarded === null) throw new Error('this node is still starting');
      return encodeForwardedResponse(await answerForwarded(decodeForwardedRequest(payload)));
    },
    logger: { debug: logger.debug, info: logger.info, warn: logger.warn, error: logger.error },
  });
  await transport.start();
  const started = await RaftNode.start<unknown>({
    id: cfg.id,
    storage,
    stateMachine: sm,
    transport,
    ...(cfg.isNewCluster ? { initialCluster: { voters: [...cfg.peers.keys()], votersOutgoing: [], learners: [] } } : {}),
    heartbeatMs: cfg.heartbeatMs,
    electionMs: cfg.electionMs,
    snapshotEntries: cfg.snapshotEntries,
    snapshotCatchUpEntries: cfg.snapshotCatchUpEntries,
    logger,
  });
  node = started;
  // Addresses learned through the replicated registry reach the transport.
  sm.onAddressesChanged = () => {
    for (const [id, a] of sm.addresses) {
      if (id !== cfg.id && a.peerAddr !== '') transport.addPeer(id, parseHostPort(a.peerAddr, 'peer-addr'));
    }
  };
  sm.onAddressesChanged();

  const self = { peerAddr: hostPort(cfg.peerAddr), clientAddr: hostPort(cfg.clientAddr) };
  const service = new KvService({ node: started, stateMachine: sm, backend, self });
  const registry = new Registry();
  registerNodeMetrics(registry, started, transport);
  const forward = peerForwarder((to, payload, ms) => transport.request(to, payload, ms), () => started.leaderId, cfg.requestTimeoutMs);
  const membershipOptions = { node: started, service, stateMachine: sm, forward };
  const membership = membershipRoutes(membershipOptions);
  const { server: http, answerForwarded: answer } = createApiServer({
    api: service,
    logger,
    registry,
    forward,
    requestTimeoutMs: cfg.requestTimeoutMs,
    maxPendingRequests: cfg.maxPending,
    maxBodyBytes: cfg.maxValueBytes + 64 * 1024,
    extraRoutes: (r) => (r.path === '/v1/internal/register' && r.method === 'POST' ? registerRoute(service, r.body, r.deadline) : membership(r)),
  });
  answerForwarded = answer;
  await listen(http, cfg.clientAddr);
  logger.info('serving', { clientAddr: self.clientAddr, peerAddr: self.peerAddr, dataDir: cfg.dataDir, term: started.core.currentTerm });
  const registration = startSelfRegistration(service, cfg, self, logger);
  const promotion = startAutoPromotion(membershipOptions, cfg.heartbeatMs * 2);
  if (cfg.join !== undefined) {
    try {
      const members = await joinCluster(cfg, self, logger);
      for (const m of members) if (m.id !== cfg.id && m.peerAddr !== '') transport.addPeer(m.id, parseHostPort(m.peerAddr, 'join'));
      writeClusterFile({ ...cfg, peers: new Map(members.filter((m) => m.peerAddr !== '').map((m) => [m.id, parseHostPort(m.peerAddr, 'join')])) });
    } catch (err) {
      io.stderr(`raftkv: could not join ${cfg.join}: ${(err as Error).message}\n`);
      clearInterval(registration);
      clearInterval(promotion);
      http.close();
      await started.stop();
      await transport.stop();
      return 1;
    }
  }

  return await new Promise<number>((resolveExit) => {
    let stopping = false;
    const shutdown = async (why: string, code: number): Promise<void> => {
      if (stopping) return;
      stopping = true;
      clearInterval(registration);
      clearInterval(promotion);
      logger.info('shutting down', { reason: why });
      const closed = new Promise<void>((r) => http.close(() => r()));
      http.closeIdleConnections();
      // In-flight requests get a bounded time to finish; then they are cut.
      const cut = setTimeout(() => http.closeAllConnections(), 3000);
      await closed;
      clearTimeout(cut);
      await started.stop().catch((err: unknown) => logger.error('stop failed', { error: String(err) }));
      await transport.stop();
      logger.info('stopped');
      resolveExit(code);
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
    process.once('SIGINT', () => void shutdown('SIGINT', 0));
    started.once('fatal', (err: Error) => void shutdown(`fatal: ${err.message}`, 1));
    // Out of the cluster for good: stop cleanly (exit 0, so a supervisor does not restart it).
    started.once('removed', (notice: RemovedNotice) => {
      io.stderr(`raftkv: ${cfg.id} was removed from the cluster (configuration entry ${notice.configIndex}, by ${notice.by}); stopping\n`);
      void shutdown('removed from the cluster', 0);
    });
  });
}

/** Asks a running cluster to add this node (as a learner first); returns the members it lists. */
async function joinCluster(cfg: ServeConfig, self: { peerAddr: string; clientAddr: string }, logger: Logger): Promise<MemberView[]> {
  const deadline = Date.now() + 60_000;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${cfg.join}/v1/members`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: cfg.id, ...self, role: cfg.isLearner ? 'learner' : 'voter' }),
        signal: AbortSignal.timeout(cfg.requestTimeoutMs + 1000),
      });
      const body = (await res.json()) as { members?: MemberView[]; error?: { message?: string } };
      if (res.ok && Array.isArray(body.members)) {
        logger.info('joined the cluster', { via: cfg.join, members: body.members.map((m) => m.id) });
        return body.members;
      }
      lastError = `${res.status} ${body.error?.message ?? ''}`;
      // A change in progress or no leader: worth another try; anything else is final.
      if (res.status !== 409 && res.status !== 503 && res.status !== 504) throw new Error(lastError);
    } catch (err) {
      if (err instanceof Error && err.message === lastError) throw err;
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`gave up after 60 s: ${lastError}`);
}

function writeClusterFile(cfg: Pick<ServeConfig, 'id' | 'dataDir' | 'peers'>): void {
  const body: ClusterFile = { id: cfg.id, peers: Object.fromEntries([...cfg.peers].map(([k, v]) => [k, hostPort(v)])) };
  const path = join(cfg.dataDir, 'cluster.json');
  writeFileSync(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

function listen(http: Server, addr: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(addr.port, addr.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
}

async function registerRoute<R>(service: KvService<R>, body: Uint8Array, deadline: number): Promise<Reply> {
  const b = parseJson(body) as { id?: unknown; peerAddr?: unknown; clientAddr?: unknown };
  if (typeof b.id !== 'string' || typeof b.peerAddr !== 'string' || typeof b.clientAddr !== 'string') {
    throw new ApiError('BAD_REQUEST', 'register needs {"id","peerAddr","clientAddr"} strings');
  }
  await service.registerAddresses(b.id, { peerAddr: b.peerAddr, clientAddr: b.clientAddr }, deadline);
  return { status: 200, json: { ok: true } };
}

/** Until the replicated registry holds this node's addresses, keep asking the leader to add them. */
function startSelfRegistration<R>(service: KvService<R>, cfg: ServeConfig, self: { peerAddr: string; clientAddr: string }, logger: Logger): NodeJS.Timeout {
  let busy = false;
  const timer = setInterval(() => {
    if (busy || service.hasRegistered(cfg.id, self)) return;
    busy = true;
    const deadline = Date.now() + cfg.requestTimeoutMs;
    const attempt = service.isLeader()
      ? service.registerAddresses(cfg.id, self, deadline)
      : (async () => {
          const leader = service.leaderUrl();
          if (leader === null) return;
          await fetch(`${leader}/v1/internal/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ id: cfg.id, ...self }),
            signal: AbortSignal.timeout(cfg.requestTimeoutMs),
          });
        })();
    attempt
      .catch((err: unknown) => logger.debug('address registration will be retried', { error: String(err) }))
      .finally(() => (busy = false));
  }, Math.max(50, cfg.heartbeatMs * 2));
  timer.unref();
  return timer;
}
