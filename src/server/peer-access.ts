// Who may speak Raft to this node (API.md "Security"): only current members, a server being added
// and a departing one the leader still tells of its removal; only peers of this cluster
// (identity.ts); snapshots only from the current leader. Checked at the handshake, and again on
// every message and request, since membership changes while a connection stays open. Whatever
// is refused is dropped and counted by reason, never acted on.
import type { RaftNode } from '../node/index.js';
import type { InstallSnapshot, Message, NodeId } from '../raft/index.js';
import type { ClusterIdentity } from './identity.js';
import type { ServiceStateMachine } from './member-registry.js';
import type { PeerCertificate } from 'node:tls';

/** The certificate's subject CN or one of its DNS subject alternative names is `id`. */
export function certificateNames(cert: PeerCertificate, id: NodeId): boolean {
  if (cert.subject?.CN === id) return true;
  const names = (cert.subjectaltname ?? '').split(',').map((n) => n.trim());
  return names.includes(`DNS:${id}`);
}

export const PEER_REFUSALS = ['not-member', 'other-cluster', 'snapshot-not-leader'] as const;
export type PeerRefusal = (typeof PEER_REFUSALS)[number];

export class PeerAccess {
  readonly refused: Record<PeerRefusal, number> = { 'not-member': 0, 'other-cluster': 0, 'snapshot-not-leader': 0 };
  /** When each peer's last message arrived (ms since the epoch): auto-promotion asks. */
  readonly lastHeard = new Map<NodeId, number>();
  node: RaftNode<unknown> | null = null;

  constructor(
    private readonly selfId: NodeId,
    private readonly identity: ClusterIdentity,
    private readonly registry: ServiceStateMachine<unknown>,
    /** Peers named by cluster.json or a join answer (added later): heard until this node knows a configuration. */
    readonly bootstrapPeers: Set<NodeId>,
  ) {}

  isMember(id: NodeId): boolean {
    if (id === this.selfId) return false;
    const node = this.node;
    if (node === null) return this.bootstrapPeers.has(id);
    const config = node.config;
    if (config.voters.includes(id) || config.votersOutgoing.includes(id) || config.learners.includes(id)) return true;
    // Registered but not yet in the configuration: a server being added (addMember registers first).
    if (this.registry.addresses.has(id)) return true;
    // Removed, but the leader still replicates to it until it holds C_new (raft/membership.ts).
    if (node.progress(id) !== undefined) return true;
    // A joiner that has not received the configuration yet trusts the members its join answer named.
    return config.voters.length === 0 && this.bootstrapPeers.has(id);
  }

  /**
   * The transport's handshake check: a refusal reason, or null to accept. With peer TLS the
   * certificate must name the id it speaks for (its subject CN or a DNS subject alternative
   * name): otherwise any certificate the CA signed, a retired node's or a client's, could speak
   * as any member, forward writes in any principal's name, or vote in its place.
   */
  checkHello(hello: { readonly clusterId: string; readonly from: NodeId }, certificate: PeerCertificate | null = null): string | null {
    if (certificate !== null && !certificateNames(certificate, hello.from)) {
      this.refused['not-member']++;
      return `the peer's certificate (${String(certificate.subject?.CN ?? 'no CN')}) does not name ${hello.from}`;
    }
    const notOurs = this.identity.refusal(hello.clusterId, hello.from);
    if (notOurs !== null) {
      this.refused['other-cluster']++;
      return notOurs;
    }
    if (!this.isMember(hello.from)) {
      this.refused['not-member']++;
      return `${hello.from} is not a member of this cluster`;
    }
    return null;
  }

  /** Filters a delivered message; true if it may reach the core. */
  admit(m: Message): boolean {
    if (!this.isMember(m.from)) {
      this.refused['not-member']++;
      return false;
    }
    this.lastHeard.set(m.from, Date.now());
    return true;
  }

  /**
   * Thesis §5.2/§7: only a leader sends InstallSnapshot, and there is one per term. Accept a
   * stream only from the leader this node follows in the current term, or from a newer term
   * (a new leader's first word may be a snapshot), before any byte of it is buffered.
   */
  acceptSnapshot(header: InstallSnapshot): string | null {
    const status = this.node?.status();
    if (status !== undefined && this.isMember(header.from)) {
      if (header.term > status.currentTerm) return null;
      if (header.term === status.currentTerm && (status.leaderId === header.from || status.leaderId === null)) return null;
    }
    this.refused['snapshot-not-leader']++;
    return `${header.from} is not the leader of term ${status?.currentTerm ?? '?'}`;
  }
}
