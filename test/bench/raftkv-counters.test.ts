// The bench's per-entry counters (bench/lib/raftkv-counters.ts) from a node's /metrics text:
// every labelled series summed, other metrics and comments ignored, a missing counter read as 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBatching, parseCounters } from '../../bench/lib/raftkv-counters.js';

const TEXT = `# HELP raftkv_applied_entries_total Entries applied
# TYPE raftkv_applied_entries_total gauge
raftkv_applied_entries_total 1000
raftkv_wal_syncs_total 40
raftkv_transport_writes_total{peer="n2"} 30
raftkv_transport_writes_total{peer="n3"} 20
raftkv_transport_messages_sent_total{peer="n2"} 70
raftkv_transport_messages_sent_total{peer="n3"} 60
raftkv_transport_writes_totally_other 999
raftkv_raft_follower_commits_total 500
process_cpu_seconds_total 0.25
`;

test('counters are summed over their labels; lookalike names and comments do not count', () => {
  assert.deepEqual(parseCounters(TEXT), { entries: 1000, syncs: 40, peerWrites: 50, peerMessages: 130, followerCommits: 500, cpuSeconds: 0.25 });
  assert.deepEqual(parseCounters(''), { entries: 0, syncs: 0, peerWrites: 0, peerMessages: 0, followerCommits: 0, cpuSeconds: 0 });
});

test("per entry between two readings: leader and the followers' mean", () => {
  const zero = parseCounters('');
  const line = formatBatching([zero, parseCounters(TEXT)], [[zero, parseCounters(TEXT.replace('process_cpu_seconds_total 0.25', 'process_cpu_seconds_total 0.1'))]]);
  assert.match(line, /^per entry \(1000 applied\): leader 0\.04 WAL syncs, 0\.05 peer writes, 0\.13 peer messages, 250 µs CPU; each follower 0\.04 syncs, 0\.05 writes, 0\.13 messages, 0\.50 own commits, 100 µs CPU$/);
});
