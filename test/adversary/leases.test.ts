// The adversary suite against leases (API.md "Coordination", "Security"), on a secure 3-node
// cluster with a 1 MiB --quota-bytes: a principal without write access to a lease's keys cannot
// revoke it (through a follower as through the leader), a read-only one cannot use leases at all;
// keepalives, lookups and revokes for random and malformed ids never crash or change anything;
// and a flood of grants is bounded: grants count as growing writes, so the quota stops them with
// 507 NO_SPACE while reads and revokes go on. After each attack, assertUnharmed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { NoSpaceError, RaftKvClient } from '../../src/client/index.js';
import { readPem } from '../../src/security/certs.js';
import { TestCluster, pollUntil, type TestNode } from '../cluster/harness.js';
import { assertApiError, http, type HttpReply } from '../cluster/http.js';
import { sendSignal } from './node-process.js';
import { Ledger, assertUnharmed, metric } from './unharmed.js';

const QUOTA_BYTES = 1 << 20;
let cluster: TestCluster | undefined;
let ledger: Ledger;

const appToken = `app-${randomBytes(16).toString('hex')}`;
const otherToken = `other-${randomBytes(16).toString('hex')}`;
const readerToken = `reader-${randomBytes(16).toString('hex')}`;

before(async () => {
  cluster = await TestCluster.start({ size: 3, secure: true, name: 'adv-leases', extraArgs: ['--quota-bytes', String(QUOTA_BYTES)] });
  const security = cluster.security!;
  const principals = [
    { name: 'admin', token: security.adminToken, permissions: [{ access: 'admin' }] },
    { name: 'app', token: appToken, permissions: [{ access: 'readwrite', prefix: 'app/' }] },
    { name: 'other', token: otherToken, permissions: [{ access: 'readwrite', prefix: 'other/' }] },
    { name: 'reader', token: readerToken, permissions: [{ access: 'read' }] },
  ];
  writeFileSync(security.authFile, JSON.stringify({ principals }), { mode: 0o600 });
  for (const n of cluster.nodes) sendSignal(n, 'SIGHUP');
  for (const n of cluster.nodes) {
    await pollUntil(`${n.id} to reload --auth-file`, 10_000, async () => ((await as(n, otherToken, '/v1/status')).status === 200 ? true : undefined));
  }
  ledger = await Ledger.open(cluster);
});
after(async () => {
  await cluster?.destroy();
});

function as(node: TestNode, token: string, path: string, options: { method?: string; body?: string } = {}): Promise<HttpReply> {
  return http(node.url, path, { method: options.method ?? 'GET', ...(options.body !== undefined ? { body: options.body } : {}), headers: { authorization: `Bearer ${token}` } });
}

async function roles(): Promise<{ leader: TestNode; followers: TestNode[] }> {
  const leader = await cluster!.waitForLeader(10_000);
  return { leader, followers: cluster!.nodes.filter((n) => n !== leader) };
}

test("a principal without write access to a lease's keys cannot revoke it; a read-only one cannot use leases", async () => {
  const { leader, followers } = await roles();
  const g = await as(followers[0]!, appToken, '/v1/leases', { method: 'POST', body: JSON.stringify({ ttlSeconds: 600 }) });
  assert.equal(g.status, 200, g.text);
  const id = g.json<{ id: number }>().id;
  const put = await as(followers[1]!, appToken, `/v1/kv/${encodeURIComponent('app/held')}?lease=${id}`, { method: 'PUT', body: 'mine' });
  assert.equal(put.status, 200, put.text);
  for (const node of [followers[0]!, followers[1]!, leader]) {
    assertApiError(await as(node, otherToken, `/v1/leases/${id}`, { method: 'DELETE' }), 403, 'PERMISSION_DENIED', `revoke by "other" through ${node.id}`);
    for (const [method, path, body] of [['POST', '/v1/leases', '{"ttlSeconds":60}'], ['POST', `/v1/leases/${id}/keepalive`, '{}'], ['GET', `/v1/leases/${id}`, undefined], ['GET', '/v1/leases', undefined], ['DELETE', `/v1/leases/${id}`, undefined]] as const) {
      assertApiError(await as(node, readerToken, path, { method, ...(body !== undefined ? { body } : {}) }), 403, 'PERMISSION_DENIED', `${method} ${path} by the read-only principal through ${node.id}`);
    }
  }
  // Still there, still attached, on every node.
  for (const node of cluster!.nodes) {
    const r = await as(node, appToken, `/v1/kv/${encodeURIComponent('app/held')}`);
    assert.equal(r.json<{ lease: number }>().lease, id, `app/held on ${node.id}`);
  }
  // Renewing or reading it touches no key: any principal that may use leases may (etcd's rule).
  assert.equal((await as(leader, otherToken, `/v1/leases/${id}/keepalive`, { method: 'POST', body: '{}' })).status, 200);
  const revoked = await as(followers[0]!, appToken, `/v1/leases/${id}`, { method: 'DELETE' });
  assert.equal(revoked.status, 200, revoked.text);
  assert.equal(revoked.json<{ deleted: number }>().deleted, 1);
  await assertUnharmed(ledger, 'revokes without permission');
});

test('keepalives, lookups and revokes of random and malformed lease ids crash nothing and change nothing', { timeout: 60_000 }, async () => {
  const { leader } = await roles();
  const revisionBefore = Number((await http(leader.url, '/v1/kv/none')).headers['raftkv-revision']);
  const ids = [
    ...Array.from({ length: 150 }, () => String(randomInt(1, 2 ** 47))),
    String(Number.MAX_SAFE_INTEGER), '9007199254740992', '0', '-1', '1e3', '0x10', '%201', '1%00', '%ff', 'a'.repeat(5000), '..', '%2e%2e', '1/2/3',
  ];
  const answers = new Map<number, number>();
  await Promise.all(
    [0, 1, 2].map(async (w) => {
      for (let i = w; i < ids.length; i += 3) {
        const node = cluster!.nodes[i % 3]!;
        for (const [method, path] of [['POST', `/v1/leases/${ids[i]}/keepalive`], ['GET', `/v1/leases/${ids[i]}`], ['DELETE', `/v1/leases/${ids[i]}`]] as const) {
          const r = await http(node.url, path, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
          answers.set(r.status, (answers.get(r.status) ?? 0) + 1);
          assert.ok([400, 404].includes(r.status), `${method} ${path.slice(0, 80)} through ${node.id}: ${r.status} ${r.text.slice(0, 200)}`);
          assert.match(String(r.headers['content-type']), /^application\/json/);
        }
      }
    }),
  );
  const revisionAfter = Number((await http(leader.url, '/v1/kv/none')).headers['raftkv-revision']);
  assert.equal(revisionAfter, revisionBefore, 'nothing was written');
  assert.ok((answers.get(404) ?? 0) >= 400, `answers by status: ${JSON.stringify([...answers])}`);
  await assertUnharmed(ledger, 'random keepalives');
});

test('a flood of grants is bounded by --quota-bytes: 507 NO_SPACE, while reads and revokes go on', { timeout: 180_000 }, async (t) => {
  const security = cluster!.security!;
  const client = new RaftKvClient({ endpoints: cluster!.urls, token: appToken, ca: readPem(security.ca.cert, 'ca'), timeoutMs: 10_000 });
  let granted = 0;
  let refused = 0;
  const grantedIds: number[] = [];
  const started = Date.now();
  try {
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        // Each worker grants until the quota refuses it three times (the cap is the store's, not a guess).
        let misses = 0;
        while (misses < 3 && Date.now() - started < 150_000) {
          try {
            grantedIds.push((await client.grantLease(3600)).id);
            granted++;
          } catch (err) {
            if (!(err instanceof NoSpaceError)) throw err;
            refused++;
            misses++;
          }
        }
      }),
    );
    t.diagnostic(`${granted} grants accepted, ${refused} refused with 507 in ${Date.now() - started} ms`);
    assert.ok(refused >= 24, 'the quota refused the flood');
    // 64 bytes of store per lease (LEASE_OVERHEAD_BYTES): the quota bounds the count.
    assert.ok(granted <= QUOTA_BYTES / 64, `${granted} leases in a ${QUOTA_BYTES}-byte quota`);
    const { leader } = await roles();
    assert.ok((await metric(leader, 'raftkv_leases')) >= granted);
    assert.equal(await metric(leader, 'raftkv_alarm{alarm="NO_SPACE"}'), 1, 'the alarm is raised');
    // Reads, revokes and deletes still work while full (each revoke goes through the log).
    const listed = await client.leases({ limit: 10 });
    assert.equal(listed.leases.length, 10);
    for (const id of grantedIds.slice(0, 20)) assert.equal((await client.revokeLease(id)).deleted, 0);
  } finally {
    client.close();
  }
  await assertUnharmed(ledger, 'a flood of grants');
});
