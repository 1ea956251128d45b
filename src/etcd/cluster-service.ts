// etcd's Cluster.MemberList and Maintenance.Status over raftkv's membership and node status.
// Members carry etcd-style uint64 ids (ids.ts); a member's client URL is its etcd gRPC endpoint
// (the member registry replicates --etcd-addr), or its HTTP client URL if it serves no etcd API. Status answers a version etcdctl accepts ("3.4.0-raftkv" style: etcd's major and
// minor, so version checks in clients pass), the store's size for dbSize, the leader, and the raft
// index and term; Alarm lists the node's NOSPACE alarm.
import { hostPortText } from '../server/address.js';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { members as configMembers, isVoter } from '../raft/index.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { unary } from './handlers.js';
import { status } from '@grpc/grpc-js';
import { EtcdError } from './errors.js';
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
    // Members that serve the etcd API registered its address; one that does not shows its HTTP URL.
    const etcd = id === cfg.id && cfg.etcdAddr ? hostPortText(cfg.etcdAddr) : a?.etcdAddr;
    const client = etcd ?? a?.clientAddr;
    out.push({
      ID: memberUint64(id),
      name: id,
      peerURLs: a?.peerAddr ? [`${cfg.peerTls !== null ? 'https' : 'http'}://${a.peerAddr}`] : [],
      clientURLs: client ? [`${scheme}://${client}`] : [],
      isLearner: !isVoter(config, id),
    });
  }
  return out;
}

export function maintenanceService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    // The NOSPACE alarm is raftkv's own (--quota-bytes, a full disk) and clears itself once the
    // write that raised it would fit: GET lists it, DEACTIVATE answers what is still active, and
    // an operator cannot raise one (ACTIVATE is refused).
    Alarm: unary(ctx, (req: { action: string }, call) => {
      if (req.action === 'ACTIVATE') throw new EtcdError(status.UNIMPLEMENTED, 'raftkv: alarms are raised by the node itself (--quota-bytes, a full disk), not over the API');
      ctx.authorize(call.principal, [req.action === 'GET' ? { type: 'cluster-read' } : { type: 'admin' }]);
      const alarms = ctx.parts.service.alarms().includes('NO_SPACE') ? [{ memberID: ctx.memberId, alarm: 'NOSPACE' }] : [];
      return { header: ctx.header(), alarms };
    }),
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
