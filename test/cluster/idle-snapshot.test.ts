// §7 and issue 11 (restart to the first write): a member that goes idle after a burst compacts its
// log (`--snapshot-idle-ms`, docs/runtime.md), so a restart replays none of the burst. Real
// processes and flags end to end: every member takes its idle snapshot once the writes stop, none
// while they go on, and after a kill -9 of the whole cluster each member's storage opens with
// no more than the catch-up entries to replay, every key still there.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestCluster, type TestNode } from './harness.js';
import { http, metricValue } from './http.js';

let cluster: TestCluster | undefined;
after(() => cluster?.destroy());

const KEYS = 60;
/** snapshot-entries 200: a quarter is 50 entries; catch-up 10 entries kept behind a snapshot. */
const ARGS = ['--snapshot-entries', '200', '--snapshot-catch-up-entries', '10', '--snapshot-idle-ms', '600'];

async function idleSnapshots(node: TestNode): Promise<number> {
  return metricValue(await node.metrics(), 'raftkv_idle_snapshots_total');
}

/** The `walEntries` of the node's latest `storage opened` log line. */
function walEntries(node: TestNode): number {
  const lines = readFileSync(node.logFile, 'utf8').split('\n').filter((l) => l.includes('"storage opened"'));
  assert.ok(lines.length > 0, `${node.id} logged no 'storage opened'`);
  return (JSON.parse(lines.at(-1)!) as { walEntries: number }).walEntries;
}

test('§7 an idle member compacts its log once the writes stop, and a restart after that replays none of them', { timeout: 90_000 }, async () => {
  cluster = await TestCluster.start({ size: 3, name: 'idle-snapshot', extraArgs: ARGS });
  const leader = await cluster.waitForLeader();
  // Five writes every 100 ms for 1.5 s: 75 entries, past the quarter (50) that makes an idle
  // snapshot worth it, and fewer than the 200 of a snapshot by count; never idle for 600 ms.
  for (let round = 0; round < 15; round++) {
    await Promise.all(Array.from({ length: 5 }, (_, j) => http(leader.url, `/v1/kv/busy-${round}-${j}`, { method: 'PUT', body: `v${j}` }).then((r) => assert.equal(r.status, 200, r.text))));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const node of cluster.nodes) assert.equal(await idleSnapshots(node), 0, `${node.id} took an idle snapshot while the writes went on`);
  // At once a burst of KEYS writes, then nothing: one idle snapshot covers both.
  await Promise.all(Array.from({ length: KEYS }, (_, i) => http(leader.url, `/v1/kv/k${i}`, { method: 'PUT', body: `value ${i}` }).then((r) => assert.equal(r.status, 200, r.text))));
  const commitIndex = (await leader.status())!.commitIndex;
  for (const node of cluster.nodes) {
    await cluster.waitApplied(node, commitIndex);
    const deadline = Date.now() + 15_000;
    while ((await idleSnapshots(node)) < 1) {
      assert.ok(Date.now() < deadline, `${node.id} took no idle snapshot within 15 s of the burst`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const snapshotIndex = metricValue(await node.metrics(), 'raftkv_raft_snapshot_index');
    assert.ok(snapshotIndex >= commitIndex - 10, `${node.id} compacted to ${snapshotIndex} only; its log reaches ${commitIndex}`);
  }

  // The whole cluster killed and restarted: each member's storage holds at most the catch-up
  // entries past its snapshot (plus the few entries a new leader appends), and every key is there.
  for (const node of cluster.nodes) await node.stop('SIGKILL');
  for (const node of cluster.nodes) cluster.startNode(node);
  const restarted = await cluster.waitForLeader(20_000);
  for (const node of cluster.nodes) assert.ok(walEntries(node) <= 12, `${node.id} replays ${walEntries(node)} entries after a restart`);
  const r = await http(restarted.url, `/v1/kv/k${KEYS - 1}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json<{ value: string }>().value, `value ${KEYS - 1}`);
});
