// MVCC revisions on a real 3-node cluster (API.md "Coordination"): every key-value answer carries
// Raftkv-Revision, writes answer their revision through any node, reads at a past revision see
// the store as it was on every node, compaction is an admin request that every replica applies,
// and the leader compacts on its own with --auto-compaction-mode revision.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil, TestCluster } from './harness.js';
import { assertApiError, http, type HttpReply } from './http.js';

let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'revisions', extraArgs: ['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '2000'] });
});
after(async () => {
  await cluster?.destroy();
});

const kv = (key: string, query = ''): string => `/v1/kv/${encodeURIComponent(key)}${query}`;
function ok<T = Record<string, unknown>>(reply: HttpReply, what: string): T {
  assert.equal(reply.status, 200, `${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
  return reply.json<T>();
}

test('writes through any node answer their revision, one more per change; every answer carries Raftkv-Revision', async () => {
  const [a, b, c] = cluster.nodes;
  const first = await http(a!.url, kv('rev/x'), { method: 'PUT', body: '1' });
  const r1 = ok<{ index: number; revision: number }>(first, 'put').revision;
  assert.equal(first.headers['raftkv-revision'], String(r1));
  const r2 = ok<{ revision: number }>(await http(b!.url, kv('rev/y'), { method: 'PUT', body: '1' }), 'put via another node').revision;
  assert.equal(r2, r1 + 1);
  const missing = ok<{ revision: number; deleted: boolean }>(await http(c!.url, kv('rev/none'), { method: 'DELETE' }), 'delete of a missing key');
  assert.deepEqual([missing.deleted, missing.revision], [false, r2], 'nothing changed: no revision');
  const t = ok<{ revision: number }>(
    await http(c!.url, '/v1/txn', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ success: [{ type: 'put', key: 'rev/x', value: '2' }, { type: 'put', key: 'rev/z', value: '1' }] }) }),
    'txn',
  );
  assert.equal(t.revision, r2 + 1, 'a transaction counts once');
  for (const node of cluster.nodes) {
    const got = await http(node.url, kv('rev/x'));
    const rec = ok<{ createRevision: number; modRevision: number; version: number; lease: number }>(got, `get via ${node.id}`);
    assert.deepEqual([rec.createRevision, rec.modRevision, rec.version, rec.lease], [r1, r2 + 1, 2, 0]);
    assert.ok(Number(got.headers['raftkv-revision']) >= r2 + 1, `header on ${node.id}: ${got.headers['raftkv-revision']}`);
    const listed = await http(node.url, '/v1/kv?prefix=rev/');
    assert.ok(Number(listed.headers['raftkv-revision']) >= r2 + 1);
    const notFound = await http(node.url, kv('rev/none'));
    assert.equal(notFound.status, 404);
    assert.ok(notFound.headers['raftkv-revision'] !== undefined, 'a 404 on a key carries the revision too');
  }
  // The store as it was, on every node (stale reads too, once applied).
  for (const node of cluster.nodes) {
    assert.equal(ok<{ value: string }>(await http(node.url, kv('rev/x', `?revision=${r2}`)), 'get at r2').value, '1');
    assert.equal((await http(node.url, kv('rev/z', `?revision=${r2}`))).status, 404);
    const then = ok<{ items: { key: string }[] }>(await http(node.url, `/v1/kv?prefix=rev/&revision=${r1}`), 'list at r1');
    assert.deepEqual(then.items.map((i) => i.key), ['rev/x']);
  }
  assertApiError(await http(a!.url, kv('rev/x', '?revision=999999999')), 400, 'FUTURE_REVISION', 'a read in the future');
  assertApiError(await http(a!.url, kv('rev/x', '?revision=0')), 400, 'BAD_REQUEST', 'a bad revision');
  assertApiError(await http(a!.url, kv('rev/x', '?revision=abc')), 400, 'BAD_REQUEST', 'a bad revision');
});

test('POST /v1/compact drops history on every node: older reads answer 410 COMPACTED, the compact revision stays readable', async () => {
  const [a, b] = cluster.nodes;
  const r1 = ok<{ revision: number }>(await http(a!.url, kv('cmp/k'), { method: 'PUT', body: 'old' }), 'put').revision;
  const r2 = ok<{ revision: number }>(await http(a!.url, kv('cmp/k'), { method: 'PUT', body: 'new' }), 'put').revision;
  const compacted = ok<{ compactRevision: number; revision: number }>(
    await http(b!.url, '/v1/compact', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ revision: r2 }) }),
    'compact via a follower',
  );
  assert.equal(compacted.compactRevision, r2);
  for (const node of cluster.nodes) {
    await pollUntil(`compaction applied on ${node.id}`, 5000, async () => ((await http(node.url, kv('cmp/k', `?revision=${r1}&consistency=stale`))).status === 410 ? true : undefined));
    const gone = await http(node.url, kv('cmp/k', `?revision=${r1}`));
    assertApiError(gone, 410, 'COMPACTED', 'a read before the compaction');
    assert.equal(ok<{ value: string }>(await http(node.url, kv('cmp/k', `?revision=${r2}`)), 'at the compact revision').value, 'new');
  }
  assertApiError(
    await http(a!.url, '/v1/compact', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ revision: r2 }) }),
    410,
    'COMPACTED',
    'compacting again at the same revision',
  );
  assertApiError(
    await http(a!.url, '/v1/compact', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ revision: 1e12 }) }),
    400,
    'FUTURE_REVISION',
    'compacting in the future',
  );
  for (const body of ['{}', '{"revision":-1}', '{"revision":"5"}', '{"revision":1.5}', '{"revision":5,"x":1}', 'nope']) {
    assertApiError(await http(a!.url, '/v1/compact', { method: 'POST', headers: { 'content-type': 'application/json' }, body }), 400, 'BAD_REQUEST', `compact body ${body}`);
  }
  assertApiError(await http(a!.url, '/v1/compact'), 405, 'METHOD_NOT_ALLOWED', 'GET /v1/compact');
});

test('the leader compacts on its own: with a retention of 2000 revisions, history older than that goes', async () => {
  const [a] = cluster.nodes;
  const start = ok<{ revision: number }>(await http(a!.url, kv('auto/0'), { method: 'PUT', body: 'x' }), 'put').revision;
  // 3200 more revisions, from 8 writers at once.
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < 3200) {
        const i = next++;
        ok(await http(a!.url, kv(`auto/${i % 50}`), { method: 'PUT', body: 'y' }), 'put');
      }
    }),
  );
  const now = ok<{ revision: number }>(await http(a!.url, kv('auto/0'), { method: 'PUT', body: 'z' }), 'put').revision;
  assert.ok(now - start > 3000);
  await pollUntil('the leader compacted past the start', 10_000, async () => ((await http(a!.url, kv('auto/0', `?revision=${start}`))).status === 410 ? true : undefined));
  const recent = await http(a!.url, kv('auto/0', `?revision=${now - 1000}`));
  assert.equal(recent.status, 200, 'the last 2000 revisions stay readable');
});
