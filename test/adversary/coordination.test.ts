// The adversary suite against compaction, locks and elections (API.md "Coordination",
// "Security"), on a secure 3-node cluster: a principal may lock or campaign only under a prefix it
// may write, a read-only one may read an election's leader but not contend, only an admin may
// compact; malformed names, bodies, leases and parameters are 4xx JSON errors through every node;
// and observers that connect and vanish by the dozen leave every node serving. After each attack,
// assertUnharmed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { TestCluster, pollUntil, type TestNode } from '../cluster/harness.js';
import { assertApiError, http, type HttpReply } from '../cluster/http.js';
import { sendSignal } from './node-process.js';
import { Ledger, assertUnharmed } from './unharmed.js';

let cluster: TestCluster | undefined;
let ledger: Ledger;
const appToken = `app-${randomBytes(16).toString('hex')}`;
const readerToken = `reader-${randomBytes(16).toString('hex')}`;

before(async () => {
  cluster = await TestCluster.start({ size: 3, secure: true, name: 'adv-coordination' });
  const security = cluster.security!;
  const principals = [
    { name: 'admin', token: security.adminToken, permissions: [{ access: 'admin' }] },
    { name: 'app', token: appToken, permissions: [{ access: 'readwrite', prefix: 'app/' }] },
    { name: 'reader', token: readerToken, permissions: [{ access: 'read' }] },
  ];
  writeFileSync(security.authFile, JSON.stringify({ principals }), { mode: 0o600 });
  for (const n of cluster.nodes) sendSignal(n, 'SIGHUP');
  for (const n of cluster.nodes) {
    await pollUntil(`${n.id} to reload --auth-file`, 10_000, async () => ((await as(n, readerToken, '/v1/status')).status === 200 ? true : undefined));
  }
  ledger = await Ledger.open(cluster);
});
after(async () => {
  await cluster?.destroy();
});

function as(node: TestNode, token: string, path: string, options: { method?: string; body?: string } = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return http(node.url, path, { method: options.method ?? 'GET', ...(options.body !== undefined ? { body: options.body } : {}), headers });
}

async function lease(node: TestNode): Promise<number> {
  const g = await as(node, appToken, '/v1/leases', { method: 'POST', body: JSON.stringify({ ttlSeconds: 600 }) });
  assert.equal(g.status, 200, g.text);
  return g.json<{ id: number }>().id;
}

test('locks and elections need write access to NAME/, compaction needs admin, reading a leader needs read access', async () => {
  const id = await lease(cluster!.nodes[0]!);
  for (const node of cluster!.nodes) {
    assertApiError(await as(node, appToken, '/v1/locks/other', { method: 'POST', body: JSON.stringify({ lease: id }) }), 403, 'PERMISSION_DENIED', `lock outside app/ via ${node.id}`);
    assertApiError(await as(node, readerToken, '/v1/locks/app', { method: 'POST', body: JSON.stringify({ lease: id }) }), 403, 'PERMISSION_DENIED', `lock by the reader via ${node.id}`);
    assertApiError(await as(node, readerToken, '/v1/elections/app/campaign', { method: 'POST', body: JSON.stringify({ lease: id, value: 'x' }) }), 403, 'PERMISSION_DENIED', `campaign by the reader via ${node.id}`);
    assertApiError(await as(node, appToken, '/v1/compact', { method: 'POST', body: '{"revision":1}' }), 403, 'PERMISSION_DENIED', `compaction by a non-admin via ${node.id}`);
    assertApiError(await as(node, readerToken, '/v1/elections/app'), 404, 'NOT_FOUND', `no leader yet, read by the reader via ${node.id}`);
  }
  // The permitted path works: "app/" is the lock `app`'s prefix ("app/…" keys).
  const held = await as(cluster!.nodes[1]!, appToken, '/v1/locks/app', { method: 'POST', body: JSON.stringify({ lease: id }) });
  assert.equal(held.status, 200, held.text);
  const key = held.json<{ key: string }>().key;
  assert.equal((await as(cluster!.nodes[2]!, appToken, `/v1/locks/app/${encodeURIComponent(key)}`, { method: 'DELETE' })).status, 200);
  await assertUnharmed(ledger, 'contending without permission');
});

test('malformed lock, election and compaction requests are 4xx JSON errors through every node, and write nothing', async () => {
  const admin = cluster!.security!.adminToken;
  const before = Number((await as(cluster!.nodes[0]!, admin, '/v1/kv?prefix=zz')).headers['raftkv-revision']);
  const long = 'n'.repeat(5000);
  const cases: [string, string, string | undefined, number][] = [
    ['POST', `/v1/locks/${long}`, '{"lease":1}', 413],
    ['POST', '/v1/locks/%E0%A4%A', '{"lease":1}', 400],
    ['POST', '/v1/locks/job', 'not json', 400],
    ['POST', '/v1/locks/job', '{"lease":-1}', 400],
    ['POST', '/v1/locks/job', '{"lease":1e300}', 400],
    ['POST', '/v1/locks/job', '{"lease":"1"}', 400],
    ['POST', '/v1/locks/job', '{"lease":1,"extra":1}', 400],
    ['POST', '/v1/locks/job?wait=maybe', '{"lease":1}', 400],
    ['POST', '/v1/locks/job', '{"lease":987654321}', 404],
    ['DELETE', '/v1/locks/job/elsewhere%2F1', undefined, 400],
    ['GET', '/v1/locks/job', undefined, 405],
    ['POST', '/v1/elections/svc/campaign', '{"lease":1}', 400],
    ['POST', '/v1/elections/svc/proclaim', '{"key":"svc/1"}', 400],
    ['GET', '/v1/elections/svc/bogus', undefined, 405],
    ['GET', '/v1/elections/svc/observe?x=1', undefined, 400],
    ['POST', '/v1/compact', '{"revision":0}', 400],
    ['POST', '/v1/compact', '{"revision":99999999999}', 400],
  ];
  for (const node of cluster!.nodes) {
    for (const [method, path, body, status] of cases) {
      const r = await as(node, admin, path, { method, ...(body !== undefined ? { body } : {}) });
      assert.equal(r.status, status, `${method} ${path.slice(0, 60)} ${body ?? ''} via ${node.id}: ${r.text.slice(0, 200)}`);
      assert.match(String(r.headers['content-type']), /^application\/json/, `${method} ${path.slice(0, 60)}: a JSON error`);
    }
  }
  const afterRevision = Number((await as(cluster!.nodes[0]!, admin, '/v1/kv?prefix=zz')).headers['raftkv-revision']);
  assert.equal(afterRevision, before, 'nothing was written');
  await assertUnharmed(ledger, 'malformed coordination requests');
});

test('observers that connect by the dozen and vanish leave every node serving', async () => {
  const security = cluster!.security!;
  for (const node of cluster!.nodes) {
    const url = new URL('/v1/elections/app/observe', node.url);
    const sockets = await Promise.all(
      Array.from({ length: 40 }, () =>
        new Promise<() => void>((resolve, reject) => {
          const req = request(url, { ca: security.client.ca, headers: { authorization: `Bearer ${appToken}` } }, (res) => {
            assert.equal(res.statusCode, 200);
            res.once('data', () => resolve(() => req.destroy()));
          });
          req.on('error', reject);
          req.end();
        }),
      ),
    );
    for (const close of sockets) close();
  }
  await assertUnharmed(ledger, '120 observers that vanished');
});
