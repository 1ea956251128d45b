// Log compaction and InstallSnapshot with real processes (§7): a follower that is down while the
// leader snapshots and compacts its log past the follower's last entry can only catch up through
// InstallSnapshot; afterwards it serves every key from its own state, and keeps them across a
// crash and restart (the installed snapshot is durable).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestCluster, type TestNode } from './harness.js';
import { http, metricValue, type KvRecordJson } from './http.js';

const KEYS = 1500;
const CONCURRENCY = 16;
let cluster: TestCluster | undefined;
after(() => cluster?.destroy());

const keyOf = (i: number): string => `snap/${String(i).padStart(5, '0')}`;
const valueOf = (i: number): string => `value-${i}-${'x'.repeat(i % 50)}`;

async function writeKeys(leader: TestNode, from: number, to: number): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      const r = await http(leader.url, `/v1/kv/${encodeURIComponent(keyOf(i))}`, { method: 'PUT', body: valueOf(i) });
      assert.equal(r.status, 200, `put ${keyOf(i)}: ${r.status} ${r.text}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function assertServesAll(node: TestNode): Promise<void> {
  const r = await http(node.url, '/v1/kv?prefix=snap%2F&limit=10000&consistency=stale', { timeoutMs: 10_000 });
  assert.equal(r.status, 200, r.text);
  const { items, more } = r.json<{ items: KvRecordJson[]; more: boolean }>();
  assert.equal(more, false);
  assert.equal(items.length, KEYS, `${node.id} serves ${items.length} of ${KEYS} keys`);
  items.forEach((item, i) => assert.deepEqual([item.key, item.value], [keyOf(i), valueOf(i)]));
  const one = await http(node.url, `/v1/kv/${encodeURIComponent(keyOf(KEYS - 1))}?consistency=stale`);
  assert.equal(one.json<KvRecordJson>().value, valueOf(KEYS - 1));
}

test('a follower behind the leader\'s compacted log catches up by InstallSnapshot and serves all data', { timeout: 90_000 }, async (t) => {
  cluster = await TestCluster.start({ size: 3, name: 'snapshot', extraArgs: ['--snapshot-entries', '200', '--snapshot-catch-up-entries', '20'] });
  const leader = await cluster.waitForLeader();
  const follower = cluster.nodes.find((n) => n !== leader)!;
  await writeKeys(leader, 0, 100);
  await cluster.waitApplied(follower, (await leader.status())!.commitIndex);
  const stopped = await follower.stop('SIGTERM');
  assert.deepEqual(stopped, { code: 0, signal: null }, 'SIGTERM must exit 0');
  const followerLastIndex = (await leader.status())!.commitIndex;

  const started = Date.now();
  await writeKeys(leader, 100, KEYS);
  t.diagnostic(`${KEYS - 100} writes with one follower down took ${Date.now() - started} ms`);
  const leaderMetrics = await leader.metrics();
  const compactedTo = metricValue(leaderMetrics, 'raftkv_raft_snapshot_index');
  assert.ok(metricValue(leaderMetrics, 'raftkv_snapshots_taken_total') >= 1, 'the leader took no snapshot');
  assert.ok(compactedTo - 20 > followerLastIndex, `the leader compacted only to ${compactedTo}; the follower stopped at ${followerLastIndex}`);
  // Its store reads the base from the saved snapshot's file (docs/storage.md), not from memory.
  await assertBaseInFile(leader);

  cluster.startNode(follower);
  const commitIndex = (await leader.status())!.commitIndex;
  const restartedAt = Date.now();
  await cluster.waitApplied(follower, commitIndex, 20_000);
  t.diagnostic(`${follower.id} caught up from ${followerLastIndex} to ${commitIndex} in ${Date.now() - restartedAt} ms`);
  const followerMetrics = await follower.metrics();
  assert.ok(metricValue(followerMetrics, 'raftkv_snapshots_installed_total') >= 1, 'the follower caught up without InstallSnapshot');
  assert.ok(metricValue(followerMetrics, 'raftkv_raft_snapshot_index') > followerLastIndex);
  await assertServesAll(follower);
  // An installed snapshot's records are read from its file once the follower has applied the
  // log after it.
  await assertBaseInFile(follower);
  await assertServesAll(follower);

  // The installed snapshot is durable: killed with the rest of the cluster and restarted ALONE
  // (no leader to send anything), the follower still serves every key from its own disk.
  for (const n of cluster.nodes) await n.stop('SIGKILL');
  cluster.startNode(follower);
  const alone = await cluster.waitApplied(follower, commitIndex, 10_000);
  assert.equal(alone.leader, null);
  await assertServesAll(follower);
  // Loaded at the restart through the snapshot's file (RaftNode.start, FileStorage.openSnapshot):
  // its base is read from there from the start, never read into memory whole.
  const loaded = readFileSync(follower.logFile, 'utf8').split('\n').filter((line) => line.includes('state machine loaded'));
  assert.ok(loaded.length >= 1 && /"inPlace":true/.test(loaded[loaded.length - 1]!), `restored in place: ${loaded.join(' | ')}`);
  await assertBaseInFile(follower);
  await assertServesAll(follower);
});

/**
 * The node's store reads its base from a snapshot file. Between a snapshot's encoding and its
 * save the new base is in memory, so this waits for a moment when none is in flight.
 */
async function assertBaseInFile(node: TestNode): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const metrics = await node.metrics();
    const inFile = metricValue(metrics, 'raftkv_kv_base_records{where="file"}');
    const inMemory = metricValue(metrics, 'raftkv_kv_base_records{where="memory"}');
    if (inFile > 0 && inMemory === 0) return;
    assert.ok(Date.now() < deadline, `${node.id} still reads its base from memory (${inMemory} records; ${inFile} from a file)`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
