// What a running node does besides answering requests: joining a cluster (--join), registering
// its own addresses with the leader, and, as leader, committing the cluster id and forgetting
// registry records of servers that never became (or stopped being) members.
import { ChangeInProgressError as ClientChangeInProgressError, OutcomeUnknownError, RaftKvClient, UnavailableError } from '../client/index.js';
import type { RaftNode } from '../node/index.js';
import type { NodeId } from '../raft/index.js';
import { readPem } from '../security/certs.js';
import { ApiError } from './errors.js';
import type { ForwardedRequest, MemberView } from './http-api.js';
import { fields, parseJson, type Reply } from './http-util.js';
import { newClusterId } from './identity.js';
import type { Logger } from './logger.js';
import type { ServiceStateMachine } from './member-registry.js';
import type { NodeConfig } from './node-server.js';
import type { KvService } from './service.js';

/**
 * Asks a running cluster to add this node (as a learner first); returns its members and cluster
 * id. It is a client of the cluster like any other: an https URL is verified against the node's
 * trusted CA (--trusted-ca-file, else --peer-trusted-ca-file), and an admin token (--join-token)
 * is sent when the cluster requires one.
 */
export async function joinCluster(
  url: string,
  cfg: NodeConfig,
  self: { peerAddr: string; clientAddr: string; etcdAddr?: string },
  logger: Logger,
  expect: (clusterId: string, members: readonly { id: string }[]) => void,
): Promise<{ members: MemberView[]; clusterId: string }> {
  const caFile = cfg.clientTls?.trustedCaFile ?? cfg.peerTls?.trustedCaFile ?? null;
  const client = new RaftKvClient({
    endpoints: [url],
    timeoutMs: cfg.requestTimeoutMs + 2000,
    ...(cfg.joinToken !== null ? { token: cfg.joinToken } : {}),
    ...(caFile !== null && url.startsWith('https:') ? { ca: readPem(caFile, 'trusted CA') } : {}),
  });
  const deadline = Date.now() + 60_000;
  let lastError = '';
  try {
    while (Date.now() < deadline) {
      try {
        const status = await client.status();
        if (status.clusterId === null) throw new UnavailableError('NO_LEADER', `${url} has no cluster id yet`, 503);
        expect(status.clusterId, status.members);
        // The etcd address is registered afterwards, by the node itself (startSelfRegistration).
        const body = await client.addMember({ id: cfg.id, peerAddr: self.peerAddr, clientAddr: self.clientAddr, role: cfg.isLearner ? 'learner' : 'voter' });
        const members = body['members'];
        const clusterId = body['clusterId'];
        if (Array.isArray(members) && typeof clusterId === 'string') {
          logger.info('joined the cluster', { via: url, members: (members as MemberView[]).map((m) => m.id), clusterId });
          return { members: members as MemberView[], clusterId };
        }
        throw new Error(`${url} answered without members and a cluster id`);
      } catch (err) {
        // A change in progress, no leader yet, or an outcome it could not learn: worth another
        // try (adding is idempotent: a member already there is answered as added). Anything else,
        // a refused token or certificate above all, is final.
        const retryable = err instanceof ClientChangeInProgressError || err instanceof UnavailableError || err instanceof OutcomeUnknownError;
        if (!retryable) throw err;
        lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    client.close();
  }
  throw new Error(`gave up after 60 s: ${lastError}`);
}

/** A member registering its own addresses over the peer channel: it may speak only for itself. */
export async function registerRoute(service: KvService<unknown>, body: Uint8Array, from: NodeId, deadline: number): Promise<Reply> {
  const b = fields(parseJson(body), ['id', 'peerAddr', 'clientAddr', 'etcdAddr']);
  if (b['id'] !== from) throw new ApiError('PERMISSION_DENIED', `${from} may register only its own addresses`);
  if (typeof b['peerAddr'] !== 'string' || typeof b['clientAddr'] !== 'string') throw new ApiError('BAD_REQUEST', 'register needs {"id","peerAddr","clientAddr"} strings');
  const etcdAddr = b['etcdAddr'];
  if (etcdAddr !== undefined && typeof etcdAddr !== 'string') throw new ApiError('BAD_REQUEST', '"etcdAddr" must be HOST:PORT');
  if (!service.isLeader()) throw new ApiError('NO_LEADER', 'not the leader');
  await service.registerAddresses(from, { peerAddr: b['peerAddr'], clientAddr: b['clientAddr'], ...(etcdAddr !== undefined ? { etcdAddr } : {}) }, deadline);
  return { status: 200, json: { ok: true } };
}

/** Until the replicated registry holds this node's addresses, keep asking the leader to add them. */
export function startSelfRegistration(
  service: KvService<unknown>,
  forward: (req: ForwardedRequest) => Promise<unknown>,
  cfg: NodeConfig,
  self: { peerAddr: string; clientAddr: string; etcdAddr?: string },
  logger: Logger,
): NodeJS.Timeout {
  let busy = false;
  const timer = setInterval(() => {
    if (busy || service.hasRegistered(cfg.id, self)) return;
    busy = true;
    const deadline = Date.now() + cfg.requestTimeoutMs;
    const attempt = service.isLeader()
      ? service.registerAddresses(cfg.id, self, deadline)
      : forward({
          method: 'POST',
          path: '/v1/internal/register',
          headers: { 'content-type': 'application/json', 'request-timeout': String(cfg.requestTimeoutMs) },
          body: new TextEncoder().encode(JSON.stringify({ id: cfg.id, ...self })),
        });
    attempt
      .catch((err: unknown) => logger.debug('address registration will be retried', { error: String(err) }))
      .finally(() => (busy = false));
  }, Math.max(50, cfg.heartbeatMs * 2));
  timer.unref();
  return timer;
}

/**
 * What only a leader does, now and then: commit a random cluster id if the cluster has none
 * (identity.ts), and forget registry records of servers that have not been members for a minute
 * (a server being added that never was, or one whose removal's clean-up was lost with a leader),
 * so they are not heard on the peer port (peer-access.ts).
 */
export function startLeaderDuties(service: KvService<unknown>, node: RaftNode<unknown>, sm: ServiceStateMachine<unknown>, cfg: NodeConfig, logger: Logger): NodeJS.Timeout {
  let busy = false;
  const outsiders = new Map<NodeId, number>();
  const timer = setInterval(() => {
    if (busy || !node.isLeader) {
      if (!node.isLeader) outsiders.clear();
      return;
    }
    const status = node.status();
    // Thesis §8: until it commits an entry of its term a new leader's proposals may wait; skip.
    if (!status.hasCommittedInTerm) return;
    const deadline = Date.now() + cfg.requestTimeoutMs;
    let work: Promise<void> | null = null;
    if (sm.clusterId === null) {
      work = service.commitClusterId(newClusterId(), deadline).then(() => logger.info('cluster id committed', { clusterId: sm.clusterId }));
    } else {
      const now = Date.now();
      const config = status.config;
      for (const id of sm.addresses.keys()) {
        const isMember = config.voters.includes(id) || config.votersOutgoing.includes(id) || config.learners.includes(id) || node.progress(id) !== undefined;
        if (isMember) {
          outsiders.delete(id);
          continue;
        }
        const since = outsiders.get(id) ?? now;
        outsiders.set(id, since);
        if (now - since > 60_000) {
          work = service.forgetAddresses(id, deadline);
          outsiders.delete(id);
          break;
        }
      }
    }
    if (work === null) return;
    busy = true;
    work.catch((err: unknown) => logger.debug('leader duty will be retried', { error: String(err) })).finally(() => (busy = false));
  }, Math.max(100, cfg.heartbeatMs * 5));
  timer.unref();
  return timer;
}

