// Membership changes with real processes (thesis §4.2, §4.3, §3.10): growing and shrinking a
// cluster under a continuous write load, replacing a dead member, removing the leader, learners,
// and what survives restarts and snapshots. Each test proves, besides its own point: every write
// the cluster acknowledged is read back through every remaining node with linearizable reads, and
// no two nodes ever claimed leadership in the same term (Election Safety, Figure 3), as seen by
// polling every node's /v1/status throughout.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderWatch, runMain, TestCluster, type TestNode } from './harness.js';
import { assertApiError, http, metricValue, type NodeStatus } from './http.js';
import { assertAckedEverywhere, stopAllLoads, readAll, startWriteLoad, type WriteLoad } from './write-load.js';

const clusters: TestCluster[] = [];
after(async () => {
  await stopAllLoads();
  await Promise.all(clusters.map((c) => c.destroy()));
});

async function startCluster(size: number, name: string, extraArgs: readonly string[] = []): Promise<TestCluster> {
  const cluster = await TestCluster.start({ size, name, extraArgs: ['--request-timeout-ms', '2000', ...extraArgs] });
  clusters.push(cluster);
  return cluster;
}

/** `raftkv ARGS --endpoints ...` to completion; fails the test on a non-zero exit. */
async function cli(cluster: TestCluster, args: readonly string[], endpoints: readonly TestNode[] = cluster.responsive()): Promise<string> {
  const r = await runMain([...args, '--endpoints', endpoints.map((n) => n.url).join(','), '--timeout-ms', '10000'], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `raftkv ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Stops the load and the watch, then checks both promises of the header comment. */
async function finish(cluster: TestCluster, load: WriteLoad, watch: LeaderWatch, nodes: readonly TestNode[], t: { diagnostic(s: string): void }): Promise<void> {
  await load.stop();
  await watch.stop();
  t.diagnostic(`${load.acked.size} writes acknowledged, ${load.failures.length} failed or unknown; leaders by term: ${watch.describe()} (${watch.polls} status polls)`);
  await cluster.waitForLeader();
  await assertAckedEverywhere(nodes, load);
}

/** Each node holds the data itself (not only through forwarding): a stale read once it has applied the leader's commit index. */
async function assertHoldsData(cluster: TestCluster, nodes: readonly TestNode[], load: WriteLoad): Promise<void> {
  const leader = await cluster.waitForLeader();
  const commitIndex = (await leader.status())!.commitIndex;
  for (const node of nodes) {
    await cluster.waitApplied(node, commitIndex);
    const stored = await readAll(node, load.prefix, 'stale');
    for (const [key, value] of load.acked) assert.equal(stored.get(key)?.value, value, `${node.id} does not hold acknowledged write ${key}`);
  }
}

test('grow 3 → 5 under load: n4 joins with serve --join (learner, auto-promoted), n5 is added with `raftkv members add`; then leadership moves to the newcomer', { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster(3, 'grow');
  const watch = new LeaderWatch(cluster);
  const founders = [...cluster.nodes];
  const load = startWriteLoad({ endpoints: founders.map((n) => n.url), prefix: 'grow' });
  // More than the promotion lag (100 entries), so a learner that is not running cannot look caught up.
  await load.waitForMore(150, 20_000);

  const n4 = await cluster.addSlot('n4');
  cluster.startJoining(n4, cluster.node('n2'));
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 15_000);
  await load.waitForMore(30, 10_000);

  // `members add` first: the cluster knows n5 (as a learner, since it is far behind) before it runs.
  const n5 = await cluster.addSlot('n5');
  const added = await cli(cluster, ['members', 'add', 'n5', '--peer-addr', n5.peerAddr, '--client-addr', n5.url], founders);
  assert.match(added, /added n5/);
  const listed = JSON.parse(await cli(cluster, ['members', 'list', '--json'], founders)) as { members: { id: string; role: string; peerAddr: string; clientAddr: string }[] };
  assert.deepEqual(listed.members.find((m) => m.id === 'n5'), { id: 'n5', role: 'learner', peerAddr: n5.peerAddr, clientAddr: n5.clientAddr }, 'an added voter is a learner until it has caught up (thesis §4.2.1)');
  // The new process finds the cluster through --join (it is already a member: the join only confirms its addresses).
  cluster.startJoining(n5, cluster.node('n1'));
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4', 'n5'] }, 15_000);
  await cluster.waitForReady(20_000);
  await load.waitForMore(30, 10_000);

  // A freshly added voter can take over (thesis §3.10: the leader first brings it up to date).
  const moved = await cli(cluster, ['leader', 'transfer', '--to', 'n5', '--json'], founders);
  assert.deepEqual(JSON.parse(moved), { leader: 'n5' });
  assert.equal((await cluster.waitForLeader()).id, 'n5');
  await load.waitForMore(30, 10_000);

  await finish(cluster, load, watch, cluster.nodes, t);
  await assertHoldsData(cluster, [n4, n5], load);
});

test('shrink 5 → 3 under load: `raftkv members remove` of a follower, then DELETE of the leader itself (it hands off first and leaves)', { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster(5, 'shrink');
  const watch = new LeaderWatch(cluster);
  const leader = await cluster.waitForLeader();
  const follower = cluster.nodes.find((n) => n !== leader)!;
  const staying = cluster.nodes.filter((n) => n !== leader && n !== follower);
  const load = startWriteLoad({ endpoints: staying.map((n) => n.url), prefix: 'shrink' });
  await load.waitForMore(50, 20_000);

  follower.expectExit();
  assert.match(await cli(cluster, ['members', 'remove', follower.id], staying), new RegExp(`removed ${follower.id}`));
  await cluster.waitForConfiguration({ voters: [leader, ...staying].map((n) => n.id) }, 10_000, [leader, ...staying]);
  // Once C_new is committed the leader tells the removed server, and it stops by itself.
  await follower.waitRemovedExit();
  cluster.forget(follower);
  await load.waitForMore(30, 10_000);

  // The leader removes itself: it transfers leadership first, the new leader carries out the change.
  const removedAt = Date.now();
  leader.expectExit();
  const reply = await http(leader.url, `/v1/members/${leader.id}`, { method: 'DELETE', timeoutMs: 10_000 });
  assert.equal(reply.status, 200, reply.text);
  const members = reply.json<{ members: { id: string }[] }>().members.map((m) => m.id).sort();
  assert.deepEqual(members, staying.map((n) => n.id).sort());
  t.diagnostic(`the leader ${leader.id} removed itself in ${Date.now() - removedAt} ms`);
  await cluster.waitForConfiguration({ voters: staying.map((n) => n.id) }, 10_000, staying);
  const oldLeaderView = await leader.status();
  if (oldLeaderView !== null) assert.notEqual(oldLeaderView.role, 'leader', `${leader.id} still claims leadership after removing itself`);
  await leader.waitRemovedExit();
  cluster.forget(leader);
  const newLeader = await cluster.waitForLeader();
  assert.ok(staying.includes(newLeader));
  await load.waitForMore(30, 10_000);

  await finish(cluster, load, watch, staying, t);
  await cluster.waitForReady(20_000);
});

test('replace a dead member: kill -9 a follower, remove it, a fresh node joins; writes continue throughout', { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster(3, 'replace');
  const watch = new LeaderWatch(cluster);
  const leader = await cluster.waitForLeader();
  const dead = cluster.nodes.find((n) => n !== leader)!;
  const alive = cluster.nodes.filter((n) => n !== dead);
  // The dead node stays among the endpoints: a refused connection is a clean retry elsewhere.
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'replace' });
  await load.waitForMore(50, 20_000);

  await dead.stop('SIGKILL');
  await load.waitForMore(30, 10_000);
  // C_old,new = {all three} and {the two alive}: both majorities are among the living.
  assert.match(await cli(cluster, ['members', 'remove', dead.id], alive), new RegExp(`removed ${dead.id}`));
  cluster.forget(dead);
  await cluster.waitForConfiguration({ voters: alive.map((n) => n.id) }, 10_000);

  const fresh = await cluster.addSlot('n4');
  cluster.startJoining(fresh, alive[0]!);
  await cluster.waitForConfiguration({ voters: [...alive, fresh].map((n) => n.id) }, 15_000);
  await cluster.waitForReady(20_000);
  await load.waitForMore(30, 10_000);

  await finish(cluster, load, watch, cluster.nodes, t);
  await assertHoldsData(cluster, [fresh], load);
});

test('thesis §4.2.1: a node started with --learner gets the log but stays a learner until `raftkv members promote`', { timeout: 60_000 }, async () => {
  const cluster = await startCluster(3, 'learner');
  const leader = await cluster.waitForLeader();
  for (let i = 0; i < 20; i++) assert.equal((await http(leader.url, `/v1/kv/l${i}`, { method: 'PUT', body: `v${i}` })).status, 200);
  const n4 = await cluster.addSlot('n4');
  cluster.startJoining(n4, leader, ['--learner']);
  await cluster.waitForReady(20_000);
  const commitIndex = (await leader.status())!.commitIndex;
  await cluster.waitApplied(n4, commitIndex);
  // Caught up, and ten auto-promotion rounds later still a learner: it did not ask to vote.
  await new Promise((r) => setTimeout(r, 10 * 2 * cluster.heartbeatMs));
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  assert.equal((await http(n4.url, '/v1/kv/l7?consistency=stale')).json<{ value: string }>().value, 'v7');
  // A learner serves linearizable reads and writes by forwarding them to the leader.
  assert.equal((await http(n4.url, '/v1/kv/from-learner', { method: 'PUT', body: 'x' })).status, 200);
  assert.equal((await http(n4.url, '/v1/kv/from-learner')).json<{ value: string }>().value, 'x');
  // A learner cannot be handed leadership.
  assertApiError(await http(leader.url, '/v1/leader/transfer', { method: 'POST', body: '{"to":"n4"}' }), 400, 'BAD_REQUEST', 'transfer to a learner');
  assertApiError(await http(leader.url, '/v1/members/n9/promote', { method: 'POST' }), 400, 'BAD_REQUEST', 'promote of a non-member');

  assert.match(await cli(cluster, ['members', 'promote', 'n4']), /promoted n4/);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] });
  // Now a voter, it can lead.
  assert.deepEqual((await http(leader.url, '/v1/leader/transfer', { method: 'POST', body: '{"to":"n4"}' })).json(), { leader: 'n4' });
});

test('membership and client addresses survive snapshots and a full restart; a node restarted with a stale --initial-cluster trusts its data dir', { timeout: 90_000 }, async (t) => {
  // Snapshots every 20 entries with no log kept behind them: the configuration and registry
  // entries are compacted away, so after a restart they can only come from the snapshot.
  const cluster = await startCluster(3, 'persist', ['--snapshot-entries', '20', '--snapshot-catch-up-entries', '0']);
  const leader = await cluster.waitForLeader();
  const n4 = await cluster.addSlot('n4');
  cluster.startJoining(n4, leader);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 15_000);
  const gone = cluster.nodes.find((n) => n !== leader && n !== n4)!;
  gone.expectExit();
  assert.equal((await http(leader.url, `/v1/members/${gone.id}`, { method: 'DELETE' })).status, 200);
  await gone.waitRemovedExit();
  cluster.forget(gone);
  const members = cluster.nodes.map((n) => n.id);
  await cluster.waitForConfiguration({ voters: members }, 10_000);
  const configIndex = Math.max(...(await Promise.all(cluster.nodes.map(async (n) => (await n.configuration())!.configIndex))));
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'persist' });
  await load.waitForMore(200, 20_000);
  await load.stop();
  for (const node of cluster.nodes) {
    await cluster.waitApplied(node, (await leader.status())!.commitIndex);
    const m = await node.metrics();
    assert.ok(metricValue(m, 'raftkv_raft_snapshot_index') > configIndex, `${node.id} has not compacted past the configuration entry ${configIndex}`);
  }

  // Everyone down at once (kill -9), then back: the founders with the founding --initial-cluster
  // (which still names the removed node and not n4), one of them with a made-up one.
  for (const node of cluster.nodes) await node.stop('SIGKILL');
  const founders = cluster.nodes.filter((n) => n !== n4);
  cluster.startNode(founders[0]!);
  cluster.startNode(founders[1]!, ['--initial-cluster', `${founders[1]!.id}=${founders[1]!.peerAddr},ghost=127.0.0.1:9`]);
  n4.start(cluster.joinArgs(n4, founders[0]!));
  await cluster.waitForReady(15_000);
  await cluster.waitForConfiguration({ voters: members }, 10_000);
  for (const node of cluster.nodes) {
    const s = (await node.status()) as NodeStatus;
    const view = s.members.map((m) => `${m.id}=${m.peerAddr}/${m.clientAddr}/${m.role}`).sort();
    assert.deepEqual(view, cluster.nodes.map((n) => `${n.id}=${n.peerAddr}/${n.clientAddr}/voter`).sort(), `${node.id} after the restart`);
  }
  // Forwarding works from every node (it needs the leader's client and peer addresses).
  for (const node of cluster.nodes) assert.equal((await http(node.url, `/v1/kv/after-restart-${node.id}`, { method: 'PUT', body: 'ok' })).status, 200);
  await assertAckedEverywhere(cluster.nodes, load);
  t.diagnostic(`${load.acked.size} writes, members ${members.join(',')} after restart`);
});
