// The adversary suite's operational attacks (issue 9, "Operational safety"; API.md "Security" and
// "Health and limits"), on a fresh plain 3-node cluster whose log is still young (auto-promotion
// once counted any learner caught up on a log of fewer than 100 entries): `members add` of a node
// that never runs must not make it a voter; `raftkv status` and /readyz must say so when quorum
// is lost; a start that fails must release its ports and leave a fresh data dir as it was. After
// each attack, assertUnharmed (unharmed.ts). The data dir's own defences are in data-dir.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { TestCluster, freePorts, makeTempDir, pollUntil, runMain } from '../cluster/harness.js';
import { assertApiError, http } from '../cluster/http.js';
import { Ledger, assertUnharmed } from './unharmed.js';

let cluster: TestCluster | undefined;
let ledger: Ledger;
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'adv-ops' });
  ledger = await Ledger.open(cluster);
});
after(() => cluster?.destroy());

const endpoints = (): string => cluster!.urls.join(',');

test('`members add` of a node that is not running leaves it a learner: the cluster keeps 3 voters and survives a failure', { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const status = await leader.status();
  assert.ok(status !== null && status.lastIndex < 100, `the log is young (lastIndex ${status?.lastIndex}), where lag alone once counted a learner caught up`);
  const [peer, client] = await freePorts(2);
  const added = await runMain(['members', 'add', 'n4', '--peer-addr', `127.0.0.1:${peer}`, '--client-addr', `127.0.0.1:${client}`, '--endpoints', endpoints()]);
  assert.equal(added.code, 0, `members add: ${added.stderr}`);
  const voters = ['n1', 'n2', 'n3'];
  await cluster!.waitForConfiguration({ voters, learners: ['n4'] }, 10_000);
  // Auto-promotion runs every two heartbeats; give it many election timeouts to go wrong.
  const until = Date.now() + 12 * cluster!.electionMs + 2000;
  while (Date.now() < until) {
    const config = await leader.configuration();
    assert.ok(config !== null, 'the leader answers');
    assert.deepEqual([...config.voters].sort(), voters, `n4, which never ran, became a voter: ${JSON.stringify(config)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Tolerates a failure: with 3 voters, 2 are a quorum.
  const victim = cluster!.nodes.find((n) => n !== leader)!;
  await victim.stop('SIGKILL');
  try {
    await ledger.writeSome(3, leader);
  } finally {
    cluster!.startNode(victim);
  }
  await cluster!.waitForLeader();
  const removed = await http((await cluster!.waitForLeader()).url, '/v1/members/n4', { method: 'DELETE', timeoutMs: 10_000 });
  assert.equal(removed.status, 200, removed.text);
  await cluster!.waitForConfiguration({ voters, learners: [] }, 10_000);
  await assertUnharmed(ledger, 'adding a node that never runs');
});

test('`raftkv status` exits non-zero when 2 of 3 nodes are down, and /readyz and /healthz answer 503 on the survivor', { timeout: 60_000 }, async () => {
  const healthy = await runMain(['status', '--endpoints', endpoints()]);
  assert.equal(healthy.code, 0, `status of a healthy cluster: ${healthy.stderr}`);
  const leader = await cluster!.waitForLeader();
  const survivor = cluster!.nodes.find((n) => n !== leader)!;
  const down = cluster!.nodes.filter((n) => n !== survivor);
  await Promise.all(down.map((n) => n.stop('SIGKILL')));
  try {
    for (const path of ['/readyz', '/healthz']) {
      const reply = await pollUntil(`${survivor.id} ${path} to say it is not ready`, 10_000, async () => {
        const r = await http(survivor.url, path, { timeoutMs: 5000 });
        return r.status === 503 ? r : undefined;
      });
      assertApiError(reply, 503, 'NOT_READY', `${survivor.id} ${path} without quorum`);
    }
    assert.equal((await http(survivor.url, '/livez')).status, 200, 'the survivor itself lives');
    const lost = await runMain(['status', '--endpoints', endpoints()], { timeoutMs: 30_000 });
    assert.notEqual(lost.code, 0, `status with 2 of 3 nodes down exited 0: ${lost.stdout}`);
    assert.match(lost.stderr, /quorum|ready/i, 'it says why');
  } finally {
    for (const n of down) cluster!.startNode(n);
  }
  await cluster!.waitForReady();
  await assertUnharmed(ledger, 'losing quorum and getting it back');
});

test('a start that fails (its client port taken, or a bad file) exits 1, releases the peer port it bound and leaves a fresh data dir as it was', { timeout: 60_000 }, async () => {
  const [peer, client] = await freePorts(2);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(client, '127.0.0.1', resolve));
  const root = makeTempDir('adv-failed-start');
  try {
    const cases = [
      { what: 'its client port taken, into a data dir that does not exist', dir: join(root, 'absent'), extra: [] as string[], says: new RegExp(`client address 127\\.0\\.0\\.1:${client}`) },
      { what: 'its client port taken, into an empty data dir', dir: join(root, 'empty'), extra: [], says: /client address/ },
      { what: 'a missing --auth-file', dir: join(root, 'auth'), extra: ['--auth-file', join(root, 'no-such-auth.json')], says: /auth-file/ },
    ];
    mkdirSync(join(root, 'empty'), { mode: 0o700 });
    for (const c of cases) {
      const existed = existsSync(c.dir);
      const clientAddr = c.extra.length === 0 ? client : (await freePorts(1))[0]!;
      const run = await runMain(['serve', '--id', 'x1', '--data-dir', c.dir, '--peer-addr', `127.0.0.1:${peer}`, '--client-addr', `127.0.0.1:${clientAddr}`, '--initial-cluster', `x1=127.0.0.1:${peer}`, ...c.extra], { timeoutMs: 20_000 });
      assert.equal(run.code, 1, `${c.what}: exit ${run.code}; stderr: ${run.stderr}`);
      assert.match(run.stderr, c.says, `${c.what}: the line names the problem`);
      assert.equal(run.stderr.trim().split('\n').length, 1, `${c.what}: one line: ${run.stderr}`);
      // Both ports are free again: we can bind them ourselves.
      for (const port of [peer, clientAddr === client ? null : clientAddr]) {
        if (port === null) continue;
        const probe = net.createServer();
        await new Promise<void>((resolve, reject) => {
          probe.once('error', (err) => reject(new Error(`${c.what}: port ${port} is still held: ${err.message}`)));
          probe.listen(port, '127.0.0.1', resolve);
        });
        await new Promise<void>((resolve) => probe.close(() => resolve()));
      }
      if (existed) assert.deepEqual(readdirSync(c.dir), [], `${c.what}: the data dir is empty again`);
      else assert.equal(existsSync(c.dir), false, `${c.what}: ${c.dir} was left behind${existsSync(c.dir) ? ` holding [${readdirSync(c.dir).join(', ')}]` : ''}`);
    }
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
  await assertUnharmed(ledger, 'failed starts beside the cluster');
});
