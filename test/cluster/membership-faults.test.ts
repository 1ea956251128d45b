// Faults in the middle of a membership change (thesis §4.3): the leader crashes, or the cluster
// is split, while the joint configuration C_old,new is in force. Whatever happens, the change
// either completes (C_new everywhere) or is cleanly abandoned (C_old everywhere, never a mix),
// writes work again afterwards, no acknowledged write is lost, and no two nodes ever lead in the
// same term.
//
// Partitions: on 127.0.0.1 a link cannot be cut without network namespaces, so a node is cut off
// by SIGSTOP (it answers nothing, to anyone) and healed by SIGCONT. That isolates whole nodes,
// which is enough to separate a majority of C_old from a majority of C_new: the real per-link
// suite lives with the network fault injector (src/faults).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderWatch, pollUntil, TestCluster, type TestNode } from './harness.js';
import { http, type ConfigurationJson } from './http.js';
import { assertAckedEverywhere, stopAllLoads, startWriteLoad, type WriteLoad } from './write-load.js';

const clusters: TestCluster[] = [];
after(async () => {
  await stopAllLoads();
  await Promise.all(clusters.map((c) => c.destroy()));
});

/** Three founders and n4, a caught-up learner that will not be promoted on its own (--learner). */
async function startWithLearner(name: string): Promise<{ cluster: TestCluster; leader: TestNode; n4: TestNode }> {
  const cluster = await TestCluster.start({ size: 3, name, extraArgs: ['--request-timeout-ms', '2000'] });
  clusters.push(cluster);
  const leader = await cluster.waitForLeader();
  const n4 = await cluster.addSlot('n4');
  cluster.startJoining(n4, leader, ['--learner']);
  await cluster.waitForReady(20_000);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  return { cluster, leader, n4 };
}

/** Polls `node`'s own configuration until `predicate` holds; returns that view. */
async function waitView(node: TestNode, what: string, predicate: (c: ConfigurationJson) => boolean, timeoutMs = 5000): Promise<ConfigurationJson> {
  return pollUntil(`${node.id}: ${what}`, timeoutMs, async () => {
    const c = await node.configuration(500);
    return c !== null && predicate(c) ? c : undefined;
  }, 5);
}

/** Sends a change to `leader` without waiting for it (it may never answer: the leader gets killed). */
function sendChange(leader: TestNode, method: 'POST' | 'DELETE', path: string): Promise<number> {
  return http(leader.url, path, { method, timeoutMs: 15_000 }).then((r) => r.status, () => 0);
}

async function finish(cluster: TestCluster, load: WriteLoad, watch: LeaderWatch, t: { diagnostic(s: string): void }): Promise<void> {
  await load.waitForMore(30, 15_000);
  await load.stop();
  await watch.stop();
  t.diagnostic(`${load.acked.size} writes acknowledged, ${load.failures.length} failed or unknown; leaders by term: ${watch.describe()}`);
  await cluster.waitForLeader();
  await assertAckedEverywhere(cluster.responsive(), load);
}

test('§4.3 kill -9 of the leader in C_old,new after one follower got it: the next leader completes the change', { timeout: 60_000 }, async (t) => {
  const { cluster, leader, n4 } = await startWithLearner('joint-crash-complete');
  const watch = new LeaderWatch(cluster);
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'jcc' });
  await load.waitForMore(50, 15_000);
  const [witness, frozen] = cluster.nodes.filter((n) => n !== leader && n !== n4) as [TestNode, TestNode];

  // Freeze one founder and the learner: C_new = {n1..n4} has no majority awake (leader + witness),
  // so C_old,new cannot commit and the leader stays in the joint configuration.
  frozen.pause();
  n4.pause();
  const promote = sendChange(leader, 'POST', '/v1/members/n4/promote');
  await waitView(leader, 'C_old,new in force', (c) => c.joint);
  await waitView(witness, 'C_old,new received', (c) => c.joint);
  await leader.stop('SIGKILL');
  frozen.resume();
  n4.resume();
  t.diagnostic(`promote answered ${await promote} (0: the connection died with the leader)`);

  // The witness holds C_old,new, so no server without it can gather a majority of C_old
  // (§5.4.1: the witness refuses a shorter log); whoever wins has it (the frozen nodes may find
  // it in their socket buffers when they wake up) and appends C_new.
  const next = await cluster.waitForLeader(15_000);
  assert.notEqual(next.id, leader.id);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 10_000);
  // The old leader comes back into the completed configuration.
  cluster.startNode(leader);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 15_000);
  await finish(cluster, load, watch, t);
});

test('§4.3 kill -9 of the leader in C_old,new while every other node is down: the change is abandoned, C_old stays', { timeout: 60_000 }, async (t) => {
  const { cluster, leader } = await startWithLearner('joint-crash-abandon');
  const watch = new LeaderWatch(cluster);
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'jca' });
  await load.waitForMore(50, 15_000);
  const others = cluster.nodes.filter((n) => n !== leader);

  // Everyone else down (killed, not frozen: a frozen node would still find the entry in its
  // socket buffer on waking), so the joint entry exists on the leader alone. The leader keeps
  // leading for up to an election timeout before CheckQuorum (§6.2) makes it step down: ample
  // time to append C_old,new.
  for (const n of others) await n.stop('SIGKILL');
  const promote = sendChange(leader, 'POST', '/v1/members/n4/promote');
  await waitView(leader, 'C_old,new in force', (c) => c.joint);
  await leader.stop('SIGKILL');
  t.diagnostic(`promote answered ${await promote}`);
  for (const n of others) n.start(n.id === 'n4' ? cluster.joinArgs(n, leader) : cluster.serveArgs(n));

  // The two founders are a majority of C_old; neither has the entry, so it is gone.
  const next = await cluster.waitForLeader(15_000);
  assert.notEqual(next.id, leader.id);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] }, 10_000);
  await load.waitForMore(30, 15_000);
  // The crashed leader restarts with C_old,new at the end of its log; the new leader's log
  // replaces that entry, and with it the configuration (thesis §4.1: a server uses the latest
  // configuration in its log, committed or not, so removing the entry reverts it).
  cluster.startNode(leader);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] }, 15_000);
  await finish(cluster, load, watch, t);
  // The abandoned change can be made again.
  assert.equal((await http(next.url, '/v1/members/n4/promote', { method: 'POST', timeoutMs: 10_000 })).status, 200);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 10_000);
});

test('§4.3 a partition leaving a majority of C_old but not of C_new (adding a voter): nothing commits until it heals, then the change completes', { timeout: 60_000 }, async (t) => {
  const { cluster, leader, n4 } = await startWithLearner('joint-split-add');
  const watch = new LeaderWatch(cluster);
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'jsa' });
  await load.waitForMore(50, 15_000);
  const [awake, cut] = cluster.nodes.filter((n) => n !== leader && n !== n4) as [TestNode, TestNode];

  // {leader, awake} is 2 of C_old = {n1,n2,n3} but only 2 of C_new = {n1..n4}.
  cut.pause();
  n4.pause();
  const promote = sendChange(leader, 'POST', '/v1/members/n4/promote');
  const joint = await waitView(leader, 'C_old,new in force', (c) => c.joint);
  await assertNothingCommits(cluster, [leader, awake], joint.configIndex, t);
  cut.resume();
  n4.resume();
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 15_000);
  t.diagnostic(`promote answered ${await promote}`);
  await finish(cluster, load, watch, t);
});

test('§4.3 a partition leaving a majority of C_new but not of C_old (removing a voter): nothing commits until it heals, then the change completes', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start({ size: 4, name: 'joint-split-remove', extraArgs: ['--request-timeout-ms', '2000'] });
  clusters.push(cluster);
  const watch = new LeaderWatch(cluster);
  const leader = await cluster.waitForLeader();
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'jsr' });
  await load.waitForMore(50, 15_000);
  const [awake, cut, leaving] = cluster.nodes.filter((n) => n !== leader) as [TestNode, TestNode, TestNode];

  // Removing `leaving`: {leader, awake} is 2 of C_new (3 voters) but only 2 of C_old (4 voters).
  cut.pause();
  leaving.pause();
  leaving.expectExit();
  const remove = sendChange(leader, 'DELETE', `/v1/members/${leaving.id}`);
  const joint = await waitView(leader, 'C_old,new in force', (c) => c.joint);
  await assertNothingCommits(cluster, [leader, awake], joint.configIndex, t);
  cut.resume();
  leaving.resume();
  const remaining = cluster.nodes.filter((n) => n !== leaving);
  await cluster.waitForConfiguration({ voters: remaining.map((n) => n.id) }, 15_000, remaining);
  t.diagnostic(`remove answered ${await remove}`);
  await leaving.waitRemovedExit();
  cluster.forget(leaving);
  await finish(cluster, load, watch, t);
});

test('§4.3 the leader itself cut off in C_old,new: the others elect a leader and complete the change; the old leader steps down when it returns', { timeout: 60_000 }, async (t) => {
  const { cluster, leader, n4 } = await startWithLearner('joint-leader-cut');
  const watch = new LeaderWatch(cluster);
  const [witness, frozen] = cluster.nodes.filter((n) => n !== leader && n !== n4) as [TestNode, TestNode];
  const load = startWriteLoad({ endpoints: [witness.url, frozen.url], prefix: 'jlc' });
  await load.waitForMore(50, 15_000);

  // As in the crash test, hold the leader in C_old,new with the witness holding it too; then cut
  // the leader off instead of killing it, and heal the rest.
  frozen.pause();
  n4.pause();
  const promote = sendChange(leader, 'POST', '/v1/members/n4/promote');
  await waitView(leader, 'C_old,new in force', (c) => c.joint);
  await waitView(witness, 'C_old,new received', (c) => c.joint);
  leader.pause();
  const cutTerm = (await witness.status())!.term;
  frozen.resume();
  n4.resume();
  const next = await pollUntil('a leader among the others', 15_000, async () => {
    for (const n of [witness, frozen, n4]) {
      const s = await n.status(300);
      if (s !== null && s.role === 'leader' && s.term > cutTerm) return n;
    }
    return undefined;
  });
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 15_000, [witness, frozen, n4]);
  await load.waitForMore(20, 15_000);
  // The old leader wakes up still believing it leads in its old term; the first message of the
  // newer term makes it a follower (§5.1), and it learns C_new from the leader's log.
  leader.resume();
  const final = await cluster.waitForLeader(15_000);
  assert.notEqual(final.id, leader.id, 'the returning old leader must not take over');
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 10_000);
  t.diagnostic(`${next.id} led after the cut (term > ${cutTerm}); ${final.id} leads after healing; promote answered ${await promote}`);
  await finish(cluster, load, watch, t);
});

/**
 * For three election timeouts, none of `nodes` commits past the joint entry: neither majority alone
 * decides anything under C_old,new (thesis §4.3). The writers keep trying all the while.
 */
async function assertNothingCommits(cluster: TestCluster, nodes: readonly TestNode[], jointIndex: number, t: { diagnostic(s: string): void }): Promise<void> {
  const until = Date.now() + 3 * cluster.electionMs;
  let highest = 0;
  while (Date.now() < until) {
    for (const n of nodes) highest = Math.max(highest, (await n.status(500))?.commitIndex ?? 0);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.diagnostic(`commit index stayed at ${highest} (joint entry at ${jointIndex}) while split`);
  assert.ok(highest < jointIndex, `commit index ${highest} reached the joint entry ${jointIndex} without a majority of both configurations`);
}
