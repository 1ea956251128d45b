// Process tests of what a security-minded operator relies on (issue 9): a cluster with HTTPS,
// mutual TLS between peers and bearer tokens works end to end, fails over and grows; the quota
// raises the NO_SPACE alarm without stopping anything; readiness tells the truth when the
// quorum is lost.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, test } from 'node:test';
import { join } from 'node:path';
import { TestCluster, TestNode, freePorts, makeTempDir, pollUntil, removeTempDir, runMain } from './harness.js';
import { assertApiError, http } from './http.js';
import { assertAckedEverywhere, startWriteLoad, stopAllLoads } from './write-load.js';

const clusters: TestCluster[] = [];
after(async () => {
  await stopAllLoads();
  for (const c of clusters) await c.destroy();
});

function plainHttpStatus(url: string): Promise<number | string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = request({ host: u.hostname, port: Number(u.port), path: '/v1/status', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

test('a secure cluster (HTTPS, peer mTLS, tokens): writes through every node, kill -9 of the leader fails over, a --join-token joiner becomes a voter; plain HTTP and tokenless requests get nothing', { timeout: 120_000 }, async () => {
  const cluster = await TestCluster.start({ size: 3, secure: true, name: 'secure' });
  clusters.push(cluster);
  const sec = cluster.security!;
  const ca = readFileSync(sec.ca.cert);
  for (const node of cluster.nodes) {
    assert.match(node.url, /^https:/);
    assert.notEqual(await plainHttpStatus(node.url.replace('https:', 'http:')), 200, `${node.id} answers plain HTTP`);
    const anonymous = await http(node.url, '/v1/kv/x', { method: 'PUT', body: 'v', headers: { authorization: '' } });
    assertApiError(anonymous, 401, 'UNAUTHENTICATED', `tokenless PUT via ${node.id}`);
    const status = await http(node.url, '/v1/status');
    assert.equal(status.status, 200);
    assert.match(String(status.json()['clusterId']), /^[0-9a-f]{32}$/);
    assert.equal(status.headers['raftkv-cluster-id'], status.json()['clusterId']);
  }
  const load = startWriteLoad({ endpoints: cluster.urls, prefix: 'secure', security: { ca, token: sec.adminToken } });
  await load.waitForMore(30, 15_000);
  const leader = await cluster.waitForLeader();
  await leader.stop('SIGKILL');
  await load.waitForMore(30, 20_000);
  await cluster.restart(leader, 'SIGKILL');
  const n4 = await cluster.addSlot('n4');
  cluster.startJoining(n4, cluster.nodes.find((n) => n !== leader)!);
  await cluster.waitForConfiguration({ voters: ['n1', 'n2', 'n3', 'n4'] }, 30_000);
  await load.waitForMore(20, 15_000);
  await load.stop();
  await assertAckedEverywhere(cluster.running(), load);
  const cli = await runMain(['status', '--endpoints', cluster.urls.join(','), '--cacert', sec.ca.cert], { env: { ...process.env, RAFTKV_TOKEN: sec.adminToken } });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /n4/);
});

test('--quota-bytes: a write past it is 507 NO_SPACE with the alarm raised; reads and deletes still work; the alarm clears once deletes make room', { timeout: 60_000 }, async () => {
  const cluster = await TestCluster.start({ size: 3, name: 'quota', extraArgs: ['--quota-bytes', String(1 << 20)] });
  clusters.push(cluster);
  const [n1, n2] = cluster.nodes;
  const value = 'x'.repeat(100_000);
  let refused = -1;
  for (let i = 0; i < 20; i++) {
    const r = await http(n2!.url, `/v1/kv/big${i}`, { method: 'PUT', body: value });
    if (r.status === 507) {
      assertApiError(r, 507, 'NO_SPACE', 'a write past the quota');
      refused = i;
      break;
    }
    assert.equal(r.status, 200, r.text);
  }
  assert.ok(refused > 5, `the quota refused write ${refused}`);
  const leader = await cluster.waitForLeader();
  const alarms = (await http(leader.url, '/v1/status')).json<{ alarms: string[] }>().alarms;
  assert.deepEqual(alarms, ['NO_SPACE']);
  assert.equal((await leader.metrics()).get('raftkv_alarm{alarm="NO_SPACE"}'), 1);
  assert.equal((await http(n1!.url, '/v1/kv/big0')).status, 200, 'reads still work');
  let revision = 0;
  for (let i = 0; i < 3; i++) {
    const deleted = await http(n1!.url, `/v1/kv/big${i}`, { method: 'DELETE' });
    assert.equal(deleted.status, 200, 'deletes still work');
    revision = deleted.json<{ revision: number }>().revision;
  }
  // The history keeps deleted values for reads at past revisions until it is compacted (MVCC,
  // as in etcd): compaction is what gives their space back, and it is taken while the alarm is on.
  const compacted = await http(n1!.url, '/v1/compact', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ revision }) });
  assert.equal(compacted.status, 200, compacted.text);
  await pollUntil('the alarm to clear', 5000, async () => ((await http(leader.url, '/v1/status')).json<{ alarms: string[] }>().alarms.length === 0 ? true : undefined));
  assert.equal((await http(n2!.url, '/v1/kv/again', { method: 'PUT', body: value })).status, 200, 'writes are taken again');
});

test('/readyz and raftkv status tell the truth: with 2 of 3 nodes down the survivor is 503 NOT_READY and status exits 1; with one back, ready again', { timeout: 60_000 }, async () => {
  const cluster = await TestCluster.start({ size: 3, name: 'ready' });
  clusters.push(cluster);
  const [n1, n2, n3] = cluster.nodes;
  for (const n of cluster.nodes) assert.equal((await http(n.url, '/readyz')).status, 200);
  await n2!.stop('SIGKILL');
  await n3!.stop('SIGKILL');
  const notReady = await pollUntil('the survivor to say it is not ready', 10_000, async () => {
    const r = await http(n1!.url, '/readyz', { timeoutMs: 8000 });
    return r.status === 503 ? r : undefined;
  });
  assertApiError(notReady, 503, 'NOT_READY', 'readyz without a quorum');
  assertApiError(await http(n1!.url, '/healthz', { timeoutMs: 8000 }), 503, 'NOT_READY', 'healthz without a quorum');
  assert.equal((await http(n1!.url, '/livez')).status, 200, 'but it is alive');
  await pollUntil('the leader-present metric to drop', 10_000, async () => ((await n1!.metrics()).get('raftkv_leader_present') === 0 ? true : undefined));
  const status = await runMain(['status', '--endpoints', cluster.urls.join(',')], { timeoutMs: 30_000 });
  assert.equal(status.code, 1, `status exits 1 without a quorum: ${status.stdout}${status.stderr}`);
  cluster.startNode(n2!);
  await pollUntil('readiness again', 20_000, async () => ((await http(n1!.url, '/readyz', { timeoutMs: 5000 })).status === 200 ? true : undefined));
});

test('serving a non-loopback address without TLS or without --auth-file logs a warning at start; loopback does not', { timeout: 30_000 }, async () => {
  const root = makeTempDir('exposed');
  try {
    const [peer, client] = await freePorts(2);
    const node = new TestNode('n1', `127.0.0.1:${peer}`, `127.0.0.1:${client}`, join(root, 'n1'), join(root, 'n1.log'));
    node.start(['serve', '--id', 'n1', '--data-dir', node.dataDir, '--peer-addr', `0.0.0.0:${peer}`, '--advertise-peer-addr', `127.0.0.1:${peer}`, '--client-addr', `0.0.0.0:${client}`, '--advertise-client-addr', `127.0.0.1:${client}`, '--initial-cluster', `n1=127.0.0.1:${peer}`]);
    await pollUntil('the node to serve', 10_000, async () => ((await node.status()) !== null ? true : undefined));
    const log = readFileSync(node.logFile, 'utf8');
    assert.match(log, /client API is served on a non-loopback address without TLS/);
    assert.match(log, /without --auth-file/);
    assert.match(log, /peer port is served on a non-loopback address without peer TLS/);
    assert.equal((await node.stop('SIGTERM')).code, 0);
    const quiet = await TestCluster.start({ size: 1, name: 'loopback' });
    clusters.push(quiet);
    assert.doesNotMatch(readFileSync(quiet.nodes[0]!.logFile, 'utf8'), /non-loopback/);
  } finally {
    removeTempDir(root);
  }
});
