// etcd's Cluster.MemberList and Maintenance.Status over raftkv's membership and node status.
// Members carry etcd-style uint64 ids (ids.ts); the answering member's client URL is its etcd
// gRPC endpoint, the others' are their raftkv HTTP client URLs (the member registry does not
// replicate etcd addresses yet; docs/etcd-server-notes.md). Status answers a version etcdctl accepts ("3.4.0-raftkv" style: etcd's major and
// minor, so version checks in clients pass), the store's size for dbSize, the leader, and the raft
// index and term.
import { hostPortText } from '../server/address.js';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { members as configMembers, isVoter } from '../raft/index.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { unary } from './handlers.js';
import { memberUint64 } from './ids.js';

/** What Status reports as the server's version: etcd's API level, then raftkv's. */
export const ETCD_API_VERSION = '3.4.0';

interface Member {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export function clusterService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    MemberList: unary(ctx, async (req: { linearizable: boolean }, call): Promise<{ header: ResponseHeader; members: Member[] }> => {
      ctx.authorize(call.principal, [{ type: 'cluster-read' }]);
      if (req.linearizable === true) await ctx.parts.service.readBarrier('linearizable', call.deadline);
      return { header: ctx.header(), members: memberList(ctx) };
    }),
  };
}

export function memberList(ctx: EtcdContext): Member[] {
  const { node, members, cfg } = ctx.parts;
  const config = node.config;
  const scheme = ctx.parts.clientTls === undefined ? 'http' : 'https';
  const out: Member[] = [];
  for (const id of configMembers(config)) {
    const a = members.addresses.get(id);
    // Only this member's etcd address is known here: the registry holds HTTP client addresses.
    const etcd = id === cfg.id && cfg.etcdAddr ? hostPortText(cfg.etcdAddr) : undefined;
    const client = etcd ?? a?.clientAddr;
    out.push({
      ID: memberUint64(id),
      name: id,
      peerURLs: a?.peerAddr ? [`${scheme}://${a.peerAddr}`] : [],
      clientURLs: client ? [`${scheme}://${client}`] : [],
      isLearner: !isVoter(config, id),
    });
  }
  return out;
}

export function maintenanceService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    Status: unary(ctx, (_req: unknown, call) => {
      ctx.authorize(call.principal, [{ type: 'cluster-read' }]);
      const { node, service, kv } = ctx.parts;
      const s = node.status();
      const size = service.status().alarms;
      return {
        header: ctx.header(),
        version: ETCD_API_VERSION,
        dbSize: kv.sizeBytes,
        leader: s.leaderId === null ? '0' : memberUint64(s.leaderId),
        raftIndex: s.commitIndex,
        raftTerm: s.currentTerm,
        raftAppliedIndex: s.appliedIndex,
        errors: size.includes('NO_SPACE') ? ['memberID:' + ctx.memberId + ' alarm:NOSPACE '] : [],
        dbSizeInUse: kv.sizeBytes,
        isLearner: !isVoter(s.config, s.id),
      };
    }),
  };
}
