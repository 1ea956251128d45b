// Leadership transfer with real processes (thesis §3.10): the leader stops taking new writes,
// brings the target's log up to date, then tells it to campaign at once (TimeoutNow). A lagging
// target is caught up first; a dead target never wins, and the old leader resumes within about an
// election timeout; under load, no acknowledged write is lost. How long writes pause during a
// transfer is measured by `npm run bench:transfer`, not asserted here.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderWatch, TestCluster } from './harness.js';
import { assertApiError, http } from './http.js';
import { assertAckedEverywhere, stopAllLoads, startWriteLoad } from './write-load.js';

const clusters: TestCluster[] = [];
after(async () => {
  await stopAllLoads();
  await Promise.all(clusters.map((c) => c.destroy()));
});

async function startCluster(name: string, timing: { heartbeatMs?: number; electionMs?: number } = {}): Promise<TestCluster> {
  const cluster = await TestCluster.start({ size: 3, name, ...timing, extraArgs: ['--request-timeout-ms', '3000'] });
  clusters.push(cluster);
  return cluster;
}

function transfer(via: string, to?: string): Promise<{ status: number; text: string; leader?: string }> {
  return http(via, '/v1/leader/transfer', { method: 'POST', body: JSON.stringify(to === undefined ? {} : { to }), timeoutMs: 10_000 }).then((r) => ({
    status: r.status,
    text: r.text,
    ...(r.status === 200 ? { leader: r.json<{ leader: string }>().leader } : {}),
  }));
}

test('§3.10 transfer to a lagging follower: frozen while writes went on, it is brought up to date first, then leads; nothing acknowledged is lost', { timeout: 60_000 }, async (t) => {
  // The transfer gives the target one election timeout to catch up and win: a longer one than
  // the other tests use, so that a loaded machine cannot make the catch-up miss it.
  const cluster = await startCluster('transfer-lagging', { heartbeatMs: 100, electionMs: 1000 });
  const watch = new LeaderWatch(cluster);
  const leader = await cluster.waitForLeader();
  const lagging = cluster.nodes.find((n) => n !== leader)!;
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'tlag' });
  await load.waitForMore(30, 15_000);
  lagging.pause();
  await load.waitForMore(300, 20_000);
  const behind = (await leader.status())!.lastIndex;
  // Ask while the target is still frozen and hundreds of entries behind: the leader must bring it
  // up to date before it sends TimeoutNow, else the target would lose the election (§5.4.1).
  // The target wakes up well within the transfer's election timeout.
  const started = Date.now();
  const pending = transfer(leader.url, lagging.id);
  await new Promise((r) => setTimeout(r, 30));
  lagging.resume();
  const result = await pending;
  t.diagnostic(`transfer to ${lagging.id}, frozen while the log grew to ${behind}, answered ${result.status} after ${Date.now() - started} ms`);
  assert.equal(result.status, 200, result.text);
  assert.equal(result.leader, lagging.id);
  assert.equal((await cluster.waitForLeader()).id, lagging.id);
  await load.waitForMore(30, 15_000);
  await load.stop();
  await watch.stop();
  t.diagnostic(`${load.acked.size} writes acknowledged, ${load.failures.length} failed; leaders by term: ${watch.describe()}`);
  await assertAckedEverywhere(cluster.nodes, load);
});

test('§3.10 transfer to a dead follower: it fails after about an election timeout (409 TRANSFER_FAILED), the old leader keeps leading and takes writes again', { timeout: 60_000 }, async (t) => {
  const cluster = await startCluster('transfer-dead');
  const watch = new LeaderWatch(cluster);
  const leader = await cluster.waitForLeader();
  const before = (await leader.status())!;
  const dead = cluster.nodes.find((n) => n !== leader)!;
  await dead.stop('SIGKILL');

  const started = Date.now();
  const result = await http(leader.url, '/v1/leader/transfer', { method: 'POST', body: JSON.stringify({ to: dead.id }), timeoutMs: 10_000 });
  const tookMs = Date.now() - started;
  t.diagnostic(`transfer to the dead ${dead.id} answered ${result.status} after ${tookMs} ms: ${result.text}`);
  assertApiError(result, 409, 'TRANSFER_FAILED', 'transfer to a dead follower');
  assert.match(result.text, new RegExp(`${dead.id} did not take over.*${leader.id} still leads`));
  // The core gives up after one election timeout; allow for timers and a loaded machine.
  assert.ok(tookMs >= cluster.electionMs * 0.5 && tookMs < cluster.electionMs * 10, `the transfer gave up after ${tookMs} ms`);

  // The old leader never stepped down (the dead target never campaigned) and takes writes again.
  const after = (await leader.status())!;
  assert.deepEqual([after.role, after.term], ['leader', before.term]);
  const put = await http(leader.url, '/v1/kv/after-failed-transfer', { method: 'PUT', body: 'ok' });
  assert.equal(put.status, 200, put.text);
  // Through a follower too (it forwards to the leader).
  const other = cluster.nodes.find((n) => n !== leader && n !== dead)!;
  assert.equal((await http(other.url, '/v1/kv/after-failed-transfer-2', { method: 'PUT', body: 'ok' })).status, 200);
  await watch.stop();
});

test('§3.10 six round-robin transfers under a write load: each target leads, one leader per term, nothing acknowledged is lost', { timeout: 60_000 }, async (t) => {
  const cluster = await startCluster('transfer-load');
  const watch = new LeaderWatch(cluster);
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'tload', writers: 4 });
  await load.waitForMore(50, 15_000);
  const took: number[] = [];
  const retried: string[] = [];
  for (let i = 0; i < 6; i++) {
    const leader = await cluster.waitForLeader();
    const target = cluster.nodes[(cluster.nodes.indexOf(leader) + 1) % cluster.nodes.length]!;
    // Ask a follower half of the time: the request is forwarded to the leader.
    const via = i % 2 === 0 ? leader : cluster.nodes.find((n) => n !== leader && n !== target)!;
    const started = Date.now();
    let result = await transfer(via.url, target.id);
    if (result.status === 409) {
      // Thesis §3.10: a target that does not win within an election timeout leaves the leader
      // in place (409 TRANSFER_FAILED), as on a machine too loaded to run the target's campaign
      // in time. What a user does then: ask again, through whoever leads now.
      retried.push(`${i}: ${result.text}`);
      result = await transfer((await cluster.waitForLeader()).url, target.id);
    }
    took.push(Date.now() - started);
    assert.equal(result.status, 200, `transfer ${i} to ${target.id} via ${via.id}: ${result.text}`);
    assert.equal(result.leader, target.id);
    await load.waitForMore(20, 15_000);
  }
  await load.stop();
  await watch.stop();
  t.diagnostic(`transfer calls took ${took.join(', ')} ms; asked again: ${retried.length === 0 ? 'none' : retried.join(' | ')}; ${load.acked.size} writes acknowledged, ${load.failures.length} failed; leaders by term: ${watch.describe()}`);
  assert.ok(retried.length <= 1, `one failed transfer in six is load; more is a bug: ${retried.join(' | ')}`);
  assert.ok(watch.leadersByTerm.size >= 7, 'every transfer starts a new term');
  await assertAckedEverywhere(cluster.nodes, load);
});
