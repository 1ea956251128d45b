// Prometheus metrics of a node: Raft term, role, commit/apply/last indexes, proposals, applied
// entries, fsync latency and transport counters. Read at scrape time; nothing on the hot path.
import type { RaftNode } from '../node/index.js';
import { DROP_REASONS, ROLES } from '../raft/index.js';
import type { TcpTransport } from '../transport/index.js';
import { Gauge, Histogram, LATENCY_BUCKETS_SECONDS, ReadCounter, type Registry } from './metrics.js';

export function registerNodeMetrics<R>(registry: Registry, node: RaftNode<R>, transport: TcpTransport): void {
  // One copy of the node's status per scrape, taken before any gauge reads it.
  let s = node.status();
  // A change of leader as this node sees it (etcd's leader_changes_seen): a new leader id, the
  // first one known included; a term without a leader is not a change until one is known.
  let leaderChanges = s.leaderId !== null ? 1 : 0;
  let lastLeader = s.leaderId;
  node.on('role', (_role: unknown, leader: string | null) => {
    if (leader === null || leader === lastLeader) return;
    lastLeader = leader;
    leaderChanges++;
  });
  registry.register(new ReadCounter('raftkv_leader_changes_total', 'Changes of leader this node has seen (a new leader id, the first included)', () => leaderChanges));
  registry.onScrape(() => (s = node.status()));
  registry.register(new Gauge('raftkv_raft_term', 'Current Raft term', () => s.currentTerm));
  registry.register(new Gauge('raftkv_raft_role', 'Current role: 1 for the role this node holds', () => ROLES.map((r) => [{ role: r }, s.role === r ? 1 : 0] as const)));
  registry.register(new Gauge('raftkv_raft_is_leader', '1 if this node is the leader', () => (s.role === 'leader' ? 1 : 0)));
  registry.register(new Gauge('raftkv_raft_commit_index', 'Highest log index known committed', () => s.commitIndex));
  registry.register(new Gauge('raftkv_raft_applied_index', 'Highest log index applied to the state machine', () => s.appliedIndex));
  registry.register(new Gauge('raftkv_raft_last_index', 'Last log index', () => s.lastIndex));
  registry.register(new Gauge('raftkv_raft_snapshot_index', 'Index of the newest snapshot the log was compacted to', () => s.snapshotIndex));
  registry.register(new ReadCounter('raftkv_proposals_total', 'Proposals accepted by this node as leader', () => node.stats.proposals));
  registry.register(new ReadCounter('raftkv_applied_entries_total', 'Entries applied to the state machine', () => node.stats.appliedEntries));
  registry.register(new ReadCounter('raftkv_snapshots_taken_total', 'Snapshots taken locally', () => node.stats.snapshotsTaken));
  registry.register(new ReadCounter('raftkv_idle_snapshots_total', 'Of the snapshots taken locally, those taken once the member was idle (--snapshot-idle-ms)', () => node.stats.idleSnapshots));
  registry.register(new ReadCounter('raftkv_snapshots_installed_total', 'Snapshots installed from a leader', () => node.stats.snapshotsInstalled));
  registry.register(new ReadCounter('raftkv_raft_follower_commits_total', 'Commit index advances this node made as a follower, counting the leader\'s announced durable copy with its own', () => node.followerCommits));
  registry.register(new ReadCounter('raftkv_raft_stable_announced_total', 'Leader: durable indexes announced at once because a member awaited an entry it forwarded', () => node.stats.stableAnnounced));
  registry.register(new ReadCounter('raftkv_wal_syncs_total', 'fdatasync calls on the write-ahead log', () => node.stats.syncs));
  const fsync = registry.register(new Histogram('raftkv_wal_fsync_duration_seconds', 'Write-ahead log sync latency', LATENCY_BUCKETS_SECONDS));
  // Sync timings are buffered by the Ready loop and moved into the histogram at scrape time.
  registry.onScrape(() => {
    for (const ms of node.stats.syncDurationsMs.splice(0)) fsync.observe(ms / 1000);
  });
  registry.register(new ReadCounter('raftkv_transport_messages_sent_total', 'Raft messages sent per peer', () => [...transport.stats().peers].map(([peer, s]) => [{ peer }, s.messagesSent] as const)));
  registry.register(new ReadCounter('raftkv_transport_writes_total', 'Batches of Raft messages written to a peer at once (one writev each), per peer', () => [...transport.stats().peers].map(([peer, s]) => [{ peer }, s.writes] as const)));
  registry.register(new ReadCounter('raftkv_raft_messages_refused_total', 'Peer messages the consensus core dropped unapplied, by reason (invalid, not-leader, stale-sender, misaddressed, contradicts-committed: an alarm, see docs/metrics.md)', () => DROP_REASONS.map((reason) => [{ reason }, s.droppedMessages[reason]] as const)));
  registry.register(new ReadCounter('raftkv_transport_connections_rejected_total', 'Inbound peer connections refused or closed, by reason', () => Object.entries(transport.stats().rejected).map(([reason, n]) => [{ reason }, n] as const)));
  registry.register(new ReadCounter('raftkv_transport_messages_dropped_total', 'Raft messages dropped per peer (queue full or unreachable)', () => [...transport.stats().peers].map(([peer, s]) => [{ peer }, s.messagesDropped] as const)));
}
