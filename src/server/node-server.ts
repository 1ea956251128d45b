// One raftkv node, assembled: identity and data dir, the peer transport, the Raft runtime over the
// file storage, the key-value service and the HTTP API, forwarding, self-registration, joining and
// auto-promotion. `raftkv serve` parses flags and handles signals around `startNode`; tests, the
// fault harness and the benches can start a whole node in-process with it.
//
// The start is ordered so that a failure changes nothing: every file is read and checked first
// (TLS material, the auth file, cluster.json), then both ports are bound, and only then is the
// data dir written. Any failure stops what was started, releases both ports, and, if the data dir
// held nothing before, empties it again; startNode then rejects with a StartError of one line.
import { memoryReleaser, type MemoryReleaser } from './memory-release.js';
import { RaftNode, type TakenSnapshot } from '../node/index.js';
import { processCpuMs } from '../node/process-cpu.js';
import type { NodeId, RemovedNotice, Snapshot, SnapshotSource } from '../raft/index.js';
import { readPem } from '../security/certs.js';
import { acquireDataDirLock, DataDirLockedError, FileStorage, FileWindow, type DataDirLock } from '../storage/index.js';
import { TcpTransport, type Hello } from '../transport/index.js';
import { hostPortText, isLoopback, parseAddress, type HostPort } from './address.js';
import { AuthFileError, Authenticator } from './auth.js';
import { inspectDataDir, restoreEmptyDataDir, writeClusterFile } from './data-dir.js';
import { joinCluster, registerRoute, startLeaderDuties, startSelfRegistration } from './duties.js';
import { decodeForwardedRequest, decodeForwardedResponse, encodeForwardedRequest, encodeForwardedResponse, peerForwarder } from './forward.js';
import { PROPOSALS_KIND, decodeProposals, encodeProposalsAnswer, type ForwardedProposal, type ProposalsAnswer } from './proposals.js';
import { authorizeActions } from './access.js';
import { createApiServer, type ForwardedRequest, type ForwardedResponse, type HttpTlsOptions, type MemberView } from './http-api.js';
import type { KvStateMachine } from '../kv/index.js';
import type { LeaseKeeper } from './leases.js';
import { ClusterFileError, ClusterIdentity, foundingId, readClusterFile, tokenHash, type ClusterFile } from './identity.js';
import { createKvBackend } from './kv-backend.js';
import { ApiError } from './errors.js';
import { errorReply, type Reply } from './http-util.js';
import type { ParsedRequest } from './api-types.js';
import { createLogger, type Logger } from './logger.js';
import { ServiceStateMachine } from './member-registry.js';
import { membershipRoutes, parseMembershipRequest, startAutoPromotion } from './membership.js';
import { DEFAULT_AUTO_COMPACTION, coordinationRoutes, startAutoCompaction } from './coordination.js';
import { lockRoutes, type LockRoutes } from './locks.js';
import { parseLeaseRequest, setUpLeases } from './lease-routes.js';
import { Gauge, ReadCounter, Registry } from './metrics.js';
import { WatchHub } from './watch.js';
import { registerNodeMetrics } from './node-metrics.js';
import { registerRuntimeMetrics, type RuntimeMetrics } from './runtime-metrics.js';
import { PEER_REFUSALS, PeerAccess } from './peer-access.js';
import { checkInitialCluster, DEFAULT_NODE_CONFIG, type NodeConfig } from './node-config.js';
import { KvService, appendForwardedWhileLoading, type Authorize } from './service.js';
import { backupRoute } from './backup-route.js';
import { RequestStats, UI_NODE_PEER_PATH, UiHub } from './ui-hub.js';
import { UiFiles } from './ui-static.js';
import type { UiNodeState } from './ui-types.js';

export { checkInitialCluster, DEFAULT_NODE_CONFIG, hasClusterFile, type NodeConfig, type TlsFiles } from './node-config.js';

/** First path segments (`/v1/x`) of the routes the service adds once it is up. */
const STARTED_ROUTES = new Set(['/v1/snapshot', '/v1/members', '/v1/configuration', '/v1/leader', '/v1/compact', '/v1/leases', '/v1/locks', '/v1/elections', '/v1/watch', '/v1/ui']);

/** A start that failed; the message is one line for the operator. Nothing was left changed. */
export class StartError extends Error {}

export interface NodeIo {
  /** Lines for the operator (removal, refusal); the structured log gets them too. */
  readonly notice: (line: string) => void;
  readonly logger?: Logger;
  /** RaftNodeOptions.downSinceMs: 0 from a process that runs this one node; else left out. */
  readonly downSinceMs?: number;
  /**
   * More front ends over the same node (the etcd v3 gRPC API, src/etcd/), started once the
   * service is up and stopped before the node. A failure to start fails the whole start.
   */
  readonly frontEnds?: readonly StartFrontEnd[];
  /**
   * Members whose Raft traffic, forwarded requests and proposals this node drops, as if the
   * network between them were cut (a live set its owner changes). Only `raftkv cluster` sets it,
   * to partition its demo nodes from the dashboard (serve --cluster-control); the dashboard's own
   * peer asks still pass, so a partitioned member stays visible.
   */
  readonly blockedPeers?: ReadonlySet<string>;
}

/** What a front end gets of the running node: the one store, its service, watches, leases, locks. */
export interface NodeParts {
  readonly cfg: NodeConfig;
  readonly node: RaftNode<unknown>;
  readonly service: KvService<unknown>;
  readonly kv: KvStateMachine;
  /** Member addresses and the cluster id, as the log has them. */
  readonly members: ServiceStateMachine<unknown>;
  readonly watches: WatchHub;
  readonly leases: LeaseKeeper;
  /** The node's --auth-file, if any (tokens and permissions). */
  readonly auth: Authenticator | undefined;
  /** Client TLS material (the client port's), if any. */
  readonly clientTls: HttpTlsOptions | undefined;
  /** Sends a request to the leader over the peer channel, answered by its HTTP router. */
  readonly forward: (req: ForwardedRequest) => Promise<ForwardedResponse>;
  readonly registry: Registry;
  readonly logger: Logger;
}

export interface FrontEnd {
  /** Stops serving; in-flight calls are ended. */
  close(): Promise<void>;
}

export type StartFrontEnd = (parts: NodeParts) => Promise<FrontEnd>;

export interface StopInfo {
  /** 0: stopped on request or removed from the cluster; 1: a fatal storage failure. */
  readonly code: number;
  readonly reason: string;
}

export interface RunningNode {
  readonly id: NodeId;
  readonly node: RaftNode<unknown>;
  readonly transport: TcpTransport;
  readonly service: KvService<unknown>;
  readonly clientUrl: string;
  /** Settles once the node has stopped, on request or on its own (removed, fatal). */
  readonly stopped: Promise<StopInfo>;
  /** Stops accepting, gives in-flight requests a bounded time, flushes, releases ports and the data dir. */
  stop(reason?: string): Promise<StopInfo>;
  /** Re-reads --auth-file (SIGHUP); a file that fails a check is refused and the old one kept. */
  reloadAuth(): void;
}

/** Undo steps of a start in progress, run newest first if it fails. */
class Undo {
  private readonly steps: (() => Promise<void> | void)[] = [];
  push(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }
  async run(logger: Logger): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        logger.warn('cleanup after a failed start', { error: String(err) });
      }
    }
  }
}

export async function startNode(cfg: NodeConfig, io: NodeIo = { notice: (l) => void process.stderr.write(`${l}\n`) }): Promise<RunningNode> {
  const logger = io.logger ?? createLogger(cfg.logLevel, { node: cfg.id });
  // 1. Every file read and checked before anything is bound or written.
  const clientTls = loadClientTls(cfg);
  const peerTls = cfg.peerTls === null ? undefined : { cert: pem(cfg.peerTls.certFile, 'peer certificate'), key: pem(cfg.peerTls.keyFile, 'peer key'), ca: pem(cfg.peerTls.trustedCaFile!, 'peer trusted CA') };
  let auth: Authenticator | undefined;
  try {
    auth = cfg.authFile === null ? undefined : new Authenticator(cfg.authFile);
  } catch (err) {
    throw new StartError(err instanceof AuthFileError ? `--auth-file ${err.message}` : String(err));
  }
  let stored: ClusterFile | null;
  try {
    stored = readClusterFile(cfg.dataDir);
  } catch (err) {
    throw new StartError(err instanceof ClusterFileError ? err.message : String(err));
  }
  const plan = planIdentity(cfg, stored);
  warnIfExposed(cfg, logger);

  const undo = new Undo();
  try {
    const dirState = inspectDataDir(cfg.dataDir);
    undo.push(() => restoreEmptyDataDir(cfg.dataDir, dirState));
    // One process per data dir, taken before anything in it is read for writing or written
    // (src/storage/dir-lock.ts); released last, after everything that writes is closed.
    let lock: DataDirLock;
    try {
      lock = await acquireDataDirLock(cfg.dataDir, { nodeId: cfg.id });
    } catch (err) {
      throw new StartError(err instanceof DataDirLockedError ? err.message : `cannot lock --data-dir ${cfg.dataDir}: ${(err as Error).message}`);
    }
    undo.push(() => lock.release());
    if (stored === null && dirState.hasLog) {
      throw new StartError(`--data-dir ${cfg.dataDir} holds a log but no cluster.json: it was not made by raftkv serve, or its cluster.json was lost; refusing to guess which cluster it belongs to`);
    }

    // 2. Both ports, before the data dir is written.
    const identity = new ClusterIdentity(plan.file?.clusterId ?? null, plan.file?.founding ?? null, new Set(plan.file?.founders ?? []));
    const { stateMachine: kvStateMachine, backend } = createKvBackend({ maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes });
    const authorizer = auth;
    const authorize: Authorize | null = authorizer === undefined ? null : (principal, actions) => authorizeActions(authorizer, principal, actions);
    const sm = new ServiceStateMachine(kvStateMachine);
    const blocked = io.blockedPeers;
    const access = new PeerAccess(cfg.id, identity, sm as ServiceStateMachine<unknown>, new Set(Object.keys(plan.file?.peers ?? {})));
    let answer: ((req: ForwardedRequest, from: NodeId) => Promise<Uint8Array>) | null = null;
    let node: RaftNode<unknown> | null = null;
    let appendProposals: ((proposals: readonly ForwardedProposal[], from: NodeId) => ProposalsAnswer) | null = null;
    const transport = new TcpTransport({
      id: cfg.id,
      clusterId: () => identity.presented(),
      listenHost: cfg.peerAddr.host,
      listenPort: cfg.peerAddr.port,
      peers: new Map(Object.entries(plan.file?.peers ?? {}).flatMap(([id, a]) => (id === cfg.id || parseAddress(a) === null ? [] : [[id, parseAddress(a)!]]))),
      ...(peerTls !== undefined ? { tls: peerTls } : {}),
      maxInboundConnections: cfg.maxPeerConnections,
      checkHello: (hello: Hello, peer) => access.checkHello(hello, peer.certificate),
      acceptSnapshot: (header) => access.acceptSnapshot(header),
      onMessage: (m) => {
        if (node !== null && blocked?.has(m.from) !== true && access.admit(m)) node.receive(m);
      },
      onUnreachable: (peer) => node?.reportUnreachable(peer),
      onSnapshotStatus: (peer, ok) => node?.reportSnapshot(peer, ok),
      onRequest: async (from, payload) => {
        if (!access.isMember(from)) throw new Error(`${from} is not a member of this cluster`);
        if (blocked?.has(from) === true && !isUiAsk(payload)) throw new Error(`${cfg.id} is partitioned from ${from}`);
        // Proposals from the core's start on (appendForwardedWhileLoading), the rest once serving.
        if (payload[0] === PROPOSALS_KIND && appendProposals !== null) return encodeProposalsAnswer(appendProposals(decodeProposals(payload), from));
        if (answer === null) throw new Error(`${cfg.id} is still starting`);
        return answer(decodeForwardedRequest(payload), from);
      },
      logger: { debug: logger.debug, info: logger.info, warn: logger.warn, error: logger.error },
    });
    await bind(() => transport.start(), `peer address ${hostPortText(cfg.peerAddr)}`);
    undo.push(() => transport.stop());
    const registry = new Registry();
    const uiFiles = new UiFiles();
    const requestStats = new RequestStats();
    let uiState: (() => UiNodeState) | null = null;
    const forward = peerForwarder((to, payload, ms) => transport.request(to, payload, ms), () => node?.leaderId ?? null, cfg.requestTimeoutMs);
    const scheme = clientTls === undefined ? 'http' : 'https';
    const http = createApiServer({
      nodeId: cfg.id,
      logger,
      registry,
      forward,
      ...(auth !== undefined ? { auth } : {}),
      ...(clientTls !== undefined ? { tls: clientTls } : {}),
      corsOrigins: cfg.corsOrigins,
      requestTimeoutMs: cfg.requestTimeoutMs,
      bodyTimeoutMs: cfg.bodyTimeoutMs ?? DEFAULT_NODE_CONFIG.bodyTimeoutMs,
      maxPendingRequests: cfg.maxPending,
      maxBodyBytes: cfg.maxValueBytes + 64 * 1024,
      maxResponseBytes: cfg.maxResponseBytes,
      maxConnections: cfg.maxClientConnections,
      // Until the service is up (step 4), these routes answer 503 STARTING, as the key-value ones do.
      extraRoutes: (r) => (extraRoutes === null ? (STARTED_ROUTES.has(r.path.split('/').slice(0, 3).join('/')) ? Promise.resolve(errorReply(new ApiError('STARTING', `${cfg.id} is starting`))) : null) : extraRoutes(r)),
      checkForwarded: (r) => void (parseMembershipRequest(r) ?? parseLeaseRequest(r)),
      peerRoutes: {
        '/v1/internal/register': (r, from) => registerRoute(service!, r.body, from, r.deadline),
        '/v1/internal/read-index': async (r) => ({ status: 200, json: await service!.readIndexForPeer(r.deadline, r.query.has('lease')) }),
        [UI_NODE_PEER_PATH]: () => Promise.resolve({ status: 200, json: uiState!() }),
      },
      uiFiles: (method, path, ifNoneMatch) => uiFiles.route(method, path, ifNoneMatch),
      onRequestDone: (method, route, _status, ms) => requestStats.record(Date.now(), ms, method !== 'GET' && method !== 'HEAD' && (route === '/v1/kv/{key}' || route === '/v1/txn')),
    });
    // Watches are served from this node's own applied state (watch.ts); they end when it stops.
    let extraRoutes: ((r: ParsedRequest) => Promise<Reply> | null) | null = null;
    const watches = new WatchHub(kvStateMachine, registry, { maxWatchers: cfg.maxWatchers ?? DEFAULT_NODE_CONFIG.maxWatchers, progressMs: cfg.watchProgressMs ?? DEFAULT_NODE_CONFIG.watchProgressMs, isStarted: false });
    await bind(() => listen(http.server, cfg.clientAddr), `client address ${hostPortText(cfg.clientAddr)}`);
    undo.push(() => (http.mux.closeAll(), closeServer(http.server)));
    undo.push(() => watches.close());

    // 3. The data dir: cluster.json first for a new founder (a crash before the bootstrap below
    // re-bootstraps identically from it), then the log.
    if (plan.isNewFile) await writeClusterFile(cfg.dataDir, plan.file!);
    let storage: FileStorage;
    const restoredBase = deferredBaseMove((snapshot) => readBaseFromFile(kvStateMachine, storage, snapshot, logger));
    try {
      storage = await FileStorage.open(cfg.dataDir, { segmentBytes: cfg.walSegmentBytes, logger: { warn: (msg: string) => logger.warn(msg) } });
    } catch (err) {
      throw new StartError(`refusing to start: ${(err as Error).message}`);
    }
    undo.push(() => storage.close());
    const opened = storage.openStats;
    logger.info('storage opened', { walMs: Math.round(opened.walMs), walEntries: opened.walEntries, snapshotMs: Math.round(opened.snapshotMs), snapshotBytes: opened.snapshotBytes });
    const founders = plan.file?.founders ?? [];
    const started = await RaftNode.start<unknown>({
      id: cfg.id,
      storage,
      stateMachine: sm,
      transport,
      ...(founders.includes(cfg.id) ? { initialCluster: { voters: [...founders], votersOutgoing: [], learners: [] } } : {}),
      heartbeatMs: cfg.heartbeatMs,
      electionMs: cfg.electionMs,
      snapshotEntries: cfg.snapshotEntries,
      snapshotLogBytes: cfg.snapshotLogBytes,
      snapshotCatchUpEntries: cfg.snapshotCatchUpEntries,
      snapshotLogPercent: cfg.snapshotLogPercent,
      snapshotIdleMs: cfg.snapshotIdleMs,
      snapshotStagger: cfg.snapshotStagger ?? DEFAULT_NODE_CONFIG.snapshotStagger,
      ...(io.downSinceMs !== undefined ? { downSinceMs: io.downSinceMs } : {}),
      // Peer messages reach the core while the state machine is loaded: a restart's election
      // runs beside the decode. Clients get 503 STARTING until step 4, which waits for the load.
      onCoreStarted: (core) => {
        node = core;
        access.node = core;
        // A restart's first write need not wait for this node's own load if it leads: a member
        // that has loaded its state forwards writes here, and they commit and apply there.
        appendProposals = appendForwardedWhileLoading(core, backend, authorize, cfg.quotaBytes);
        // The store's base reads its records from the newest snapshot's file, not from memory. A
        // snapshot taken here is written straight into its file (FileStorage's writer, which the
        // store always takes), and the store reads its base back from there as it finishes:
        // nothing to do. A restart restores through the snapshot's file from the start
        // (RaftNode.start): its base reads from there, with a filter of its keys so that a replay
        // of writes to new keys reads nothing. A snapshot installed from a leader arrives in
        // memory and moves to its file once the log after it is applied and the history decoded:
        // the replay looks up every key it writes in the base, and through a file without a
        // filter a restart right after a load of new keys came 1.3-2 s later (docs/storage.md).
        core.on('snapshot', (_bytes: number, snapshot: TakenSnapshot | Snapshot | SnapshotSource, how: 'taken' | 'restored') => {
          if (how === 'taken') {
            restoredBase.cancel();
            return;
          }
          // A restart's snapshot is restored through its file (RaftNode.start): its base is there
          // already. An installed one comes with its bytes.
          if (!('data' in snapshot) || snapshot.data === null) return;
          const target = core.status().commitIndex;
          restoredBase.await({ meta: snapshot.meta, data: snapshot.data }, () => core.appliedIndex >= target && !sm.isLoadingInBackground);
        });
      },
      logger,
    });
    undo.push(() => started.stop());
    undo.push(() => restoredBase.cancel());

    // 4. The service over the node; learned addresses and the cluster id reach the transport.
    sm.onAddressesChanged = () => {
      for (const [id, a] of sm.addresses) {
        const addr = parseAddress(a.peerAddr);
        if (id !== cfg.id && addr !== null) transport.addPeer(id, addr);
      }
    };
    sm.onClusterId = (clusterId) => {
      if (!identity.learn(clusterId)) return;
      logger.info('cluster id learned', { clusterId });
      // Also re-derivable from the log (applied again after a restart), so written in the background.
      const current = plan.file ?? readClusterFile(cfg.dataDir);
      if (current !== null) void writeClusterFile(cfg.dataDir, { ...current, clusterId }).catch((err: unknown) => logger.error('cannot record the cluster id in cluster.json', { error: String(err) }));
    };
    if (sm.clusterId !== null) sm.onClusterId(sm.clusterId);
    sm.onAddressesChanged();
    const self = {
      peerAddr: hostPortText(cfg.advertisePeerAddr),
      clientAddr: hostPortText(cfg.advertiseClientAddr),
      // What etcd's MemberList shows as this member's client URL (bound address; no advertise flag yet).
      ...(cfg.etcdAddr ? { etcdAddr: hostPortText(cfg.etcdAddr) } : {}),
    };
    const service = new KvService({
      node: started,
      stateMachine: sm,
      backend,
      self,
      quotaBytes: cfg.quotaBytes,
      isDiskFull: () => started.isOutOfSpace,
      forward,
      proposeVia: (to, payload, ms) => transport.request(to, payload, ms),
      proposeTimeoutMs: cfg.requestTimeoutMs + 1000,
      scheme,
      readyTimeoutMs: Math.max(2000, cfg.electionMs * 2),
    });
    const releaser = memoryReleaser({ onForced: (held) => logger.info('memory release forced', { arrayBuffersMb: Math.round(held / 2 ** 20) }) });
    undo.push(() => releaser.close());
    // When the store lets go of a base in memory: a snapshot it wrote into its file replaced no
    // bytes unless its base was a restored one still in memory.
    kvStateMachine.onBaseReleased = (bytes) => releaser.snapshotReplaced(bytes);
    started.on('no-space', (active: boolean) => (active ? logger.error('the disk is full: writes are refused until space is freed', { dataDir: cfg.dataDir }) : logger.info('disk space is back: writes are taken again')));
    registerNodeMetrics(registry, started, transport);
    registry.register(new Gauge('raftkv_kv_base_records', 'Records in the store\'s base tier (its newest snapshot\'s), by where they are read from: the snapshot\'s file or memory', () => {
      const { records, windowed } = kvStateMachine.baseTier;
      return [[{ where: 'file' }, windowed ? records : 0], [{ where: 'memory' }, windowed ? 0 : records]] as const;
    }));
    registerSecurityMetrics(registry, access, sm, service);
    const runtimeMetrics = registerRuntimeMetrics(registry);
    undo.push(() => runtimeMetrics.close());
    const membershipOptions = { node: started, service, stateMachine: sm, forward };
    const membership = membershipRoutes(membershipOptions);
    const coordination = coordinationRoutes({ service, kv: kvStateMachine });
    const locks = lockRoutes({ service, kv: kvStateMachine, maxKeyBytes: cfg.maxKeyBytes });
    undo.push(() => locks.close());
    const leases = setUpLeases({ node: started, service, kv: kvStateMachine, registry, electionMs: cfg.electionMs, maxResponseBytes: cfg.maxResponseBytes, requestTimeoutMs: cfg.requestTimeoutMs, logger });
    sm.onApplied((result) => leases.keeper.noteApplied(result));
    const backups = backupRoute({ nodeId: cfg.id, dataDir: cfg.dataDir, node: started, readBarrier: (deadline) => service.readBarrier('linearizable', deadline), clusterId: () => sm.clusterId, logger });
    const startedAt = Date.now();
    uiState = () => localUiState(started, service, requestStats, startedAt);
    const uiHub = new UiHub({
      self: cfg.id,
      local: uiState,
      members: () => service.members().map((m) => ({ id: m.id, clientUrl: m.clientAddr === '' ? null : `${scheme}://${m.clientAddr}`, peerAddr: m.peerAddr === '' ? null : m.peerAddr })),
      askPeer: async (id, ms) => {
        const answer = decodeForwardedResponse(await transport.request(id, encodeForwardedRequest({ method: 'GET', path: UI_NODE_PEER_PATH, headers: {}, body: new Uint8Array(0) }), ms));
        if (answer.status !== 200) throw new Error(`${id} answered ${answer.status}`);
        return JSON.parse(new TextDecoder().decode(answer.body)) as unknown;
      },
      clusterId: () => service.clusterId(),
    });
    undo.push(() => uiHub.close());
    extraRoutes = (r) => membership(r) ?? coordination(r) ?? leases.routes(r) ?? locks(r) ?? backups.route(r) ?? watches.route(r) ?? uiHub.route(r);
    appendProposals = (proposals, from) => service.appendForwarded(proposals, from, authorize);
    answer = async (req, from) => encodeForwardedResponse(await http.answerForwarded(req, from));
    http.attach(service);
    watches.start();
    const frontEnds: FrontEnd[] = [];
    for (const start of io.frontEnds ?? []) {
      const parts: NodeParts = { cfg, node: started, service, kv: kvStateMachine, members: sm as ServiceStateMachine<unknown>, watches, leases: leases.keeper, auth, clientTls, forward, registry, logger };
      const frontEnd = await start(parts);
      frontEnds.push(frontEnd);
      undo.push(() => frontEnd.close());
    }
    logger.info('serving', { clientAddr: self.clientAddr, peerAddr: self.peerAddr, dataDir: cfg.dataDir, term: started.status().currentTerm, clusterId: identity.presented(), cpuMs: processCpuMs() });

    const timers = [
      startSelfRegistration(service, forward, cfg, self, logger),
      startAutoPromotion(membershipOptions, cfg.heartbeatMs * 2, cfg.electionMs, (id) => access.lastHeard.get(id)),
      startLeaderDuties(service, started, sm, cfg, logger),
      startAutoCompaction(cfg.autoCompaction ?? DEFAULT_AUTO_COMPACTION, service, started, kvStateMachine, cfg.requestTimeoutMs, logger),
      leases.timer,
    ].filter((t): t is NodeJS.Timeout => t !== null);
    undo.push(() => timers.forEach(clearInterval));

    // 5. A joiner asks the cluster to add it, and learns its members and cluster id.
    if (plan.join !== null) {
      let joined: { members: MemberView[]; clusterId: string };
      // Learn the cluster and its members before asking to be added, so the leader's first
      // dial to this node is heard rather than refused and backed off.
      const expect = (clusterId: string, members: readonly { id: string }[]): void => {
        identity.learn(clusterId);
        for (const m of members) access.bootstrapPeers.add(m.id);
      };
      try {
        joined = await joinCluster(plan.join, cfg, self, logger, expect);
      } catch (err) {
        throw new StartError(`could not join ${plan.join}: ${(err as Error).message}`);
      }
      identity.learn(joined.clusterId);
      for (const m of joined.members) access.bootstrapPeers.add(m.id);
      for (const m of joined.members) {
        const addr = parseAddress(m.peerAddr);
        if (m.id !== cfg.id && addr !== null) transport.addPeer(m.id, addr);
      }
      const peers = Object.fromEntries(joined.members.filter((m) => parseAddress(m.peerAddr) !== null).map((m) => [m.id, m.peerAddr]));
      await writeClusterFile(cfg.dataDir, { version: 2, nodeId: cfg.id, clusterId: joined.clusterId, founding: null, founders: [], peers, token: null });
    }

    return running({ cfg, node: started, transport, service, http: http.server, mux: http.mux, watches, locks, uiHub, auth, timers, runtimeMetrics, releaser, logger, io, lock, frontEnds, clientUrl: `${scheme}://${self.clientAddr}` });
  } catch (err) {
    await undo.run(logger);
    if (err instanceof StartError) throw err;
    throw new StartError(err instanceof Error ? err.message : String(err));
  }
}

interface IdentityPlan {
  /** cluster.json as it is or will be written (null for a joiner until its join succeeds). */
  readonly file: ClusterFile | null;
  readonly isNewFile: boolean;
  readonly join: string | null;
}

/** What this start is: a restart, a founder's first start, or a join. Refuses another cluster's data dir. */
function planIdentity(cfg: NodeConfig, stored: ClusterFile | null): IdentityPlan {
  if (stored !== null) {
    if (stored.nodeId !== cfg.id) throw new StartError(`--data-dir ${cfg.dataDir} belongs to node ${stored.nodeId}, not ${cfg.id}`);
    // A restart ignores --initial-cluster (its data dir knows the membership, which may have
    // changed since), but a token that names another cluster means another cluster's data dir.
    if (cfg.initialClusterToken !== null && stored.token !== null && tokenHash(cfg.initialClusterToken) !== stored.token) {
      throw new StartError(`--data-dir ${cfg.dataDir} belongs to another cluster (${stored.clusterId ?? stored.founding}), founded with another --initial-cluster-token`);
    }
    return { file: stored, isNewFile: false, join: null };
  }
  if (cfg.join !== null) return { file: null, isNewFile: false, join: cfg.join };
  const problem = checkInitialCluster(cfg);
  if (problem !== null) throw new StartError(problem);
  const token = cfg.initialClusterToken ?? DEFAULT_NODE_CONFIG.initialClusterToken;
  return {
    file: {
      version: 2,
      nodeId: cfg.id,
      clusterId: null,
      founding: foundingId(cfg.initialCluster!, token),
      founders: [...cfg.initialCluster!.keys()],
      peers: Object.fromEntries([...cfg.initialCluster!].map(([id, a]) => [id, hostPortText(a)])),
      token: tokenHash(token),
    },
    isNewFile: true,
    join: null,
  };
}

function pem(path: string, what: string): Buffer {
  try {
    return readPem(path, what);
  } catch (err) {
    throw new StartError((err as Error).message);
  }
}

function loadClientTls(cfg: NodeConfig): HttpTlsOptions | undefined {
  const t = cfg.clientTls;
  if (t === null) return undefined;
  return {
    cert: pem(t.certFile, 'certificate (--cert-file)'),
    key: pem(t.keyFile, 'key (--key-file)'),
    ...(t.trustedCaFile !== null ? { ca: pem(t.trustedCaFile, 'trusted CA (--trusted-ca-file)') } : {}),
    requireClientCert: t.clientCertAuth,
  };
}

/** API.md: serving a non-loopback address without TLS or without --auth-file earns a warning. */
function warnIfExposed(cfg: NodeConfig, logger: Logger): void {
  if (!isLoopback(cfg.clientAddr.host)) {
    if (cfg.clientTls === null) logger.warn('the client API is served on a non-loopback address without TLS: tokens and data cross the network in the clear', { clientAddr: hostPortText(cfg.clientAddr) });
    if (cfg.authFile === null) logger.warn('the client API is served on a non-loopback address without --auth-file: anyone who can reach it can read and write every key', { clientAddr: hostPortText(cfg.clientAddr) });
  }
  if (!isLoopback(cfg.peerAddr.host) && cfg.peerTls === null) {
    logger.warn('the peer port is served on a non-loopback address without peer TLS: anyone who can reach it can pose as a member', { peerAddr: hostPortText(cfg.peerAddr) });
  }
}

async function bind(start: () => Promise<void>, what: string): Promise<void> {
  try {
    await start();
  } catch (err) {
    throw new StartError(`cannot listen on the ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function listen(server: import('node:http').Server, addr: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: import('node:http').Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function registerSecurityMetrics(registry: Registry, access: PeerAccess, sm: ServiceStateMachine<unknown>, service: KvService<unknown>): void {
  registry.register(new ReadCounter('raftkv_peer_refused_total', 'Peer connections and messages refused, by reason', () => PEER_REFUSALS.map((reason) => [{ reason }, access.refused[reason]] as const)));
  registry.register(new ReadCounter('raftkv_registry_invalid_records_total', 'Committed registry records skipped as invalid', () => sm.invalidRecords));
  registry.register(new Gauge('raftkv_alarm', 'Active alarms (1 while active)', () => [[{ alarm: 'NO_SPACE' }, service.alarms().includes('NO_SPACE') ? 1 : 0] as const]));
  registry.register(new ReadCounter('raftkv_forwarded_proposals_total', 'Writes this follower has forwarded to a leader as proposals (unit="commands"), and the batches they went in (unit="batches")', () => [[{ unit: 'commands' }, service.forwardedStats().commands], [{ unit: 'batches' }, service.forwardedStats().batches]] as const));
  registry.register(new ReadCounter('raftkv_proposals_failed_total', 'Proposals (writes, membership records) that failed, by the API error code they failed with (NO_LEADER, TIMEOUT: outcome unknown, ...)', () => {
    const failed = service.failedProposals;
    // The usual reasons are always present, so a rate over them starts from 0.
    for (const reason of ['NO_LEADER', 'TIMEOUT']) if (!failed.has(reason)) failed.set(reason, 0);
    return [...failed].map(([reason, n]) => [{ reason }, n] as const);
  }));
  registry.register(new Gauge('raftkv_leader_present', '1 if this node knows a leader', () => (service.status().leader !== null ? 1 : 0)));
}

interface RunningParts {
  readonly cfg: NodeConfig;
  readonly node: RaftNode<unknown>;
  readonly transport: TcpTransport;
  readonly service: KvService<unknown>;
  readonly http: import('node:http').Server;
  readonly mux: import('./mux-server.js').MuxHub;
  readonly watches: WatchHub;
  /** Its election observe streams, ended with the watches. */
  readonly locks: LockRoutes;
  /** Its dashboard streams, ended with the watches. */
  readonly uiHub: UiHub;
  readonly auth: Authenticator | undefined;
  readonly timers: readonly NodeJS.Timeout[];
  readonly runtimeMetrics: RuntimeMetrics;
  readonly releaser: MemoryReleaser;
  readonly logger: Logger;
  readonly io: NodeIo;
  readonly lock: DataDirLock;
  readonly frontEnds: readonly FrontEnd[];
  readonly clientUrl: string;
}

function running(p: RunningParts): RunningNode {
  let stopping: Promise<StopInfo> | null = null;
  let resolveStopped!: (info: StopInfo) => void;
  const stopped = new Promise<StopInfo>((r) => (resolveStopped = r));
  const stop = (reason = 'stop requested', code = 0): Promise<StopInfo> => {
    stopping ??= (async () => {
      p.timers.forEach(clearInterval);
      p.runtimeMetrics.close();
      p.releaser.close();
      p.logger.info('shutting down', { reason });
      await Promise.all(p.frontEnds.map((f) => f.close().catch((err: unknown) => p.logger.warn('a front end did not stop cleanly', { error: String(err) }))));
      p.watches.close();
      p.locks.close();
      p.uiHub.close();
      const closed = new Promise<void>((r) => p.http.close(() => r()));
      p.http.closeIdleConnections();
      p.mux.closeIdle();
      // In-flight requests get a bounded time to finish; then they are cut.
      const cut = setTimeout(() => {
        p.http.closeAllConnections();
        p.mux.closeAll();
      }, 3000);
      await closed;
      clearTimeout(cut);
      await p.node.stop().catch((err: unknown) => p.logger.error('stop failed', { error: String(err) }));
      await p.transport.stop();
      await p.lock.release();
      p.logger.info('stopped');
      const info = { code, reason };
      resolveStopped(info);
      return info;
    })();
    return stopping;
  };
  p.node.once('fatal', (err: Error) => void stop(`fatal: ${err.message}`, 1));
  // Out of the cluster for good: stop cleanly (exit 0, so a supervisor does not restart it).
  p.node.once('removed', (notice: RemovedNotice) => {
    p.io.notice(`raftkv: ${p.cfg.id} was removed from the cluster (configuration entry ${notice.configIndex}, by ${notice.by}); stopping`);
    void stop('removed from the cluster', 0);
  });
  return {
    id: p.cfg.id,
    node: p.node,
    transport: p.transport,
    service: p.service,
    clientUrl: p.clientUrl,
    stopped,
    stop: (reason) => stop(reason),
    reloadAuth: () => {
      if (p.auth === undefined) return;
      try {
        p.auth.reload();
        p.logger.info('auth file reloaded', { principals: p.auth.principalCount });
      } catch (err) {
        p.logger.error('auth file reload refused; the previous one stays in force', { error: (err as Error).message });
      }
    },
  };
}

/** A forwarded request for the dashboard's view of this node (passes a demo partition). */
function isUiAsk(payload: Uint8Array): boolean {
  try {
    return decodeForwardedRequest(payload).path === UI_NODE_PEER_PATH;
  } catch {
    return false;
  }
}

/** This node as the dashboard shows it (ui-types.ts). */
function localUiState(node: RaftNode<unknown>, service: KvService<unknown>, stats: RequestStats, startedAt: number): UiNodeState {
  const s = node.status();
  const now = Date.now();
  const progress = [];
  if (s.role === 'leader') {
    for (const m of service.members()) {
      if (m.id === s.id) continue;
      const p = node.progress(m.id);
      if (p !== undefined) progress.push({ id: m.id, matchIndex: p.matchIndex, nextIndex: p.nextIndex, state: String(p.state) });
    }
  }
  return {
    id: s.id,
    role: s.role,
    term: s.currentTerm,
    votedFor: s.votedFor,
    leader: s.leaderId,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    lastIndex: s.lastIndex,
    snapshotIndex: s.snapshotIndex,
    log: node.logTail(24),
    config: { voters: [...s.config.voters], votersOutgoing: [...s.config.votersOutgoing], learners: [...s.config.learners] },
    configIndex: s.configIndex,
    isChangePending: s.isChangePending,
    progress,
    alarms: service.alarms(),
    ...stats.summary(now),
    uptimeSeconds: Math.round((now - startedAt) / 1000),
  };
}

/**
 * The store's base, if it is still `snapshot`'s records in memory, reads them from the file the
 * storage saved the snapshot in from now on (src/storage/file-window.ts): at 1M keys ~300 MB the
 * process no longer holds, and no second copy while the next snapshot is written. Nothing
 * changes if the file is not that snapshot's (an older one, or none yet).
 */
function readBaseFromFile(kv: KvStateMachine, storage: FileStorage, snapshot: Snapshot, logger: Logger): void {
  try {
    const range = storage.snapshotDataRange(snapshot.meta.index, snapshot.meta.term);
    if (range === null || range.length !== snapshot.data.length) return;
    if (kv.readBaseThrough(snapshot.data, (offset, length) => new FileWindow(range.path, range.start + offset, length))) {
      logger.debug('store base read from its snapshot file', { index: snapshot.meta.index, path: range.path, bytes: range.length });
    }
  } catch (err) {
    logger.warn('the store base stays in memory: its snapshot file could not be read', { index: snapshot.meta.index, error: err instanceof Error ? err.message : String(err) });
  }
}

/** How often a restored base's move to its file is checked for (deferredBaseMove). */
const BASE_MOVE_CHECK_MS = 250;

/**
 * A restored snapshot's base moves to its file once `isReady` (the member has applied the log up
 * to what was committed when it was restored, and the history's decode is done): checked every
 * BASE_MOVE_CHECK_MS. A later snapshot, or cancel(), drops the wait.
 */
function deferredBaseMove(move: (snapshot: Snapshot) => void): {
  await(snapshot: Snapshot, isReady: () => boolean): void;
  cancel(): void;
} {
  let timer: NodeJS.Timeout | null = null;
  const cancel = (): void => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };
  return {
    await(snapshot, isReady) {
      cancel();
      timer = setInterval(() => {
        if (!isReady()) return;
        cancel();
        move(snapshot);
      }, BASE_MOVE_CHECK_MS);
      timer.unref();
    },
    cancel,
  };
}
