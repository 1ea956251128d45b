// What a raftkv member did per applied entry during a run, from its /metrics: WAL syncs, peer
// writes (one writev each), peer messages and CPU time. Over a closed-loop run these say how well writes
// are batched: at high load, one sync and one write per peer per entry means no group commit.
import { parseMetrics } from '../../src/harness/index.js';

/** The counters read from one member's /metrics (sums over labels). */
export interface RaftkvCounters {
  readonly entries: number;
  readonly syncs: number;
  readonly peerWrites: number;
  readonly peerMessages: number;
  /** Commit index advances the member made as a follower by its own count (follower.ts). */
  readonly followerCommits: number;
  /** CPU seconds of the member process (user + system). */
  readonly cpuSeconds: number;
}

const NAMES = {
  entries: 'raftkv_applied_entries_total',
  syncs: 'raftkv_wal_syncs_total',
  peerWrites: 'raftkv_transport_writes_total',
  peerMessages: 'raftkv_transport_messages_sent_total',
  followerCommits: 'raftkv_raft_follower_commits_total',
  cpuSeconds: 'process_cpu_seconds_total',
} as const;

/** Sums each counter's samples over their labels (parseMetrics, src/harness); a missing counter reads 0. */
export function parseCounters(text: string): RaftkvCounters {
  const sums = { entries: 0, syncs: 0, peerWrites: 0, peerMessages: 0, followerCommits: 0, cpuSeconds: 0 };
  for (const [series, value] of parseMetrics(text)) {
    const brace = series.indexOf('{');
    const name = brace < 0 ? series : series.slice(0, brace);
    for (const field of Object.keys(NAMES) as (keyof typeof NAMES)[]) {
      if (name === NAMES[field] && Number.isFinite(value)) sums[field] += value;
    }
  }
  return sums;
}

export async function readCounters(url: string): Promise<RaftkvCounters> {
  const res = await fetch(new URL('/metrics', url), { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET ${url}/metrics: ${res.status}`);
  return parseCounters(await res.text());
}

/** One line: per applied entry, on the leader and on each follower (mean), between two readings. */
export function formatBatching(leader: [RaftkvCounters, RaftkvCounters], followers: [RaftkvCounters, RaftkvCounters][]): string {
  const per = (a: RaftkvCounters, b: RaftkvCounters, f: keyof RaftkvCounters): string => {
    const entries = b.entries - a.entries;
    return entries > 0 ? ((b[f] - a[f]) / entries).toFixed(2) : '-';
  };
  const [la, lb] = leader;
  const entries = lb.entries - la.entries;
  const follower = (f: keyof RaftkvCounters): string => {
    if (followers.length === 0 || entries <= 0) return '-';
    const total = followers.reduce((s, [a, b]) => s + (b[f] - a[f]), 0);
    return (total / followers.length / entries).toFixed(2);
  };
  const cpuUs = (a: RaftkvCounters, b: RaftkvCounters): string => (entries > 0 ? (((b.cpuSeconds - a.cpuSeconds) * 1e6) / entries).toFixed(0) : '-');
  const followerCpu = followers.map(([a, b]) => cpuUs(a, b)).join('/');
  return `per entry (${entries} applied): leader ${per(la, lb, 'syncs')} WAL syncs, ${per(la, lb, 'peerWrites')} peer writes, ${per(la, lb, 'peerMessages')} peer messages, ${cpuUs(la, lb)} µs CPU; each follower ${follower('syncs')} syncs, ${follower('peerWrites')} writes, ${follower('peerMessages')} messages, ${follower('followerCommits')} own commits, ${followerCpu} µs CPU`;
}
