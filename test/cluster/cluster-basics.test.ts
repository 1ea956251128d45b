// Real 3- and 5-node clusters: one leader is elected, and every endpoint of the HTTP API
// (API.md) answers correctly through every node, followers forwarding to the leader.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil, TestCluster, type TestNode } from './harness.js';
import { assertApiError, http, parseMetrics, type HttpReply, type KvRecordJson, type NodeStatus } from './http.js';

const clusters: TestCluster[] = [];
after(async () => {
  for (const c of clusters) await c.destroy();
});

const kv = (key: string, query = ''): string => `/v1/kv/${encodeURIComponent(key)}${query}`;
const put = (node: TestNode, key: string, body: string | Uint8Array, query = '', headers: Record<string, string> = {}): Promise<HttpReply> =>
  http(node.url, kv(key, query), { method: 'PUT', body, headers });
const get = (node: TestNode, key: string, query = ''): Promise<HttpReply> => http(node.url, kv(key, query));
const txn = (node: TestNode, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> =>
  http(node.url, '/v1/txn', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

function ok<T = Record<string, unknown>>(reply: HttpReply, what: string): T {
  assert.equal(reply.status, 200, `${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
  return reply.json<T>();
}

function writeIndex(reply: HttpReply, what: string): number {
  const { index } = ok<{ index: number }>(reply, what);
  assert.ok(Number.isSafeInteger(index) && index > 0, `${what}: index ${index}`);
  return index;
}

/** Exactly one node calls itself leader, every node names it in the same term, and /metrics agrees. */
async function assertOneLeader(cluster: TestCluster): Promise<TestNode> {
  const leader = await cluster.waitForLeader();
  const statuses = await Promise.all(cluster.nodes.map((n) => n.status()));
  assert.equal(statuses.filter((s) => s?.role === 'leader').length, 1, JSON.stringify(statuses));
  const isLeaderGauges = await Promise.all(cluster.nodes.map(async (n) => (await n.metrics()).get('raftkv_raft_is_leader')));
  assert.deepEqual(isLeaderGauges, cluster.nodes.map((n) => (n === leader ? 1 : 0)));
  return leader;
}

async function checkPutGetAndReads(cluster: TestCluster, node: TestNode, leader: TestNode, p: string): Promise<void> {
  const written = await put(node, `${p}a`, 'v1');
  assert.equal(written.headers['raftkv-node'], node.id);
  assert.equal(written.headers['raftkv-leader'], leader.url);
  const i1 = writeIndex(written, 'put');
  const r1 = ok<{ revision: number }>(written, 'put').revision;
  assert.equal(written.headers['raftkv-revision'], String(r1));
  // A linearizable read through ANY node sees a write acknowledged through any other.
  for (const other of cluster.nodes) {
    assert.deepEqual(ok(await get(other, `${p}a`), `get via ${other.id}`), {
      key: `${p}a`,
      value: 'v1',
      createIndex: i1,
      modIndex: i1,
      version: 1,
      createRevision: r1,
      modRevision: r1,
      lease: 0,
    });
    assert.equal(ok<KvRecordJson>(await get(other, `${p}a`, '?consistency=lease'), 'lease get').value, 'v1');
  }
  // A stale read is answered from the node's own state: it may lag, but only ever shows a value that was written.
  const stale = await pollUntil(`a stale read on ${node.id}`, 3000, async () => {
    const r = await get(node, `${p}a`, '?consistency=stale');
    if (r.status === 404) return undefined;
    return ok<KvRecordJson>(r, 'stale get');
  });
  assert.equal(stale.value, 'v1');
  assert.equal(stale.modIndex, i1);

  const raw = await get(node, `${p}a`, '?raw');
  assert.equal(raw.status, 200);
  assert.equal(raw.headers['content-type'], 'application/octet-stream');
  assert.equal(raw.text, 'v1');

  // Binary values round-trip: bytes in, the same bytes out of ?raw, base64 in JSON.
  const binary = Uint8Array.from([0, 255, 254, 0x80, 0x0a, 0, 0xc3, 0x28, 0xf0]);
  writeIndex(await put(node, `${p}bin`, binary), 'binary put');
  assert.deepEqual(new Uint8Array((await get(node, `${p}bin`, '?raw')).body), binary);
  const asJson = ok<KvRecordJson>(await get(node, `${p}bin`), 'binary get');
  assert.equal(asJson.encoding, 'base64');
  assert.deepEqual(new Uint8Array(Buffer.from(asJson.value, 'base64')), binary);
  writeIndex(await put(node, `${p}text é✓`, 'héllo ✓'), 'utf-8 put');
  const text = ok<KvRecordJson>(await get(node, `${p}text é✓`), 'utf-8 get');
  assert.equal(text.value, 'héllo ✓');
  assert.equal(text.encoding, undefined);
  writeIndex(await put(node, `${p}empty`, ''), 'empty put');
  assert.equal((await get(node, `${p}empty`, '?raw')).body.length, 0);
}

async function checkCompareAndSet(node: TestNode, p: string): Promise<void> {
  const k = `${p}cas`;
  const first = await put(node, k, 'v1');
  const i1 = writeIndex(first, 'put v1');
  const r1 = ok<{ revision: number }>(first, 'put v1').revision;
  const i2 = writeIndex(await put(node, k, 'v2', '?prevValue=v1'), 'prevValue match');
  assertApiError(await put(node, k, 'v3', '?prevValue=v1'), 412, 'COMPARE_FAILED', 'prevValue mismatch');
  assertApiError(await put(node, k, 'v3', `?prevIndex=${i1}`), 412, 'COMPARE_FAILED', 'prevIndex mismatch');
  const third = await put(node, k, 'v3', `?prevIndex=${i2}`);
  const i3 = writeIndex(third, 'prevIndex match');
  const r3 = ok<{ revision: number }>(third, 'prevIndex match').revision;
  assertApiError(await put(node, k, 'x', '?prevExist=false'), 412, 'COMPARE_FAILED', 'prevExist=false on an existing key');
  assert.deepEqual(ok(await get(node, k), 'after CAS'), { key: k, value: 'v3', createIndex: i1, modIndex: i3, version: 3, createRevision: r1, modRevision: r3, lease: 0 });

  const fresh = `${p}fresh`;
  assertApiError(await put(node, fresh, 'x', '?prevExist=true'), 412, 'COMPARE_FAILED', 'prevExist=true on a missing key');
  assertApiError(await get(node, fresh), 404, 'NOT_FOUND', 'a failed create wrote nothing');
  writeIndex(await put(node, fresh, 'created', '?prevExist=false'), 'create');
  writeIndex(await put(node, fresh, 'updated', '?prevExist=true'), 'update');
  assert.equal(ok<KvRecordJson>(await get(node, fresh), 'after update').version, 2);

  assertApiError(await http(node.url, kv(k, '?prevValue=nope'), { method: 'DELETE' }), 412, 'COMPARE_FAILED', 'delete prevValue mismatch');
  assertApiError(await http(node.url, kv(k, `?prevIndex=${i2}`), { method: 'DELETE' }), 412, 'COMPARE_FAILED', 'delete prevIndex mismatch');
  const del = ok<{ index: number; deleted: boolean }>(await http(node.url, kv(k, `?prevIndex=${i3}`), { method: 'DELETE' }), 'delete');
  assert.equal(del.deleted, true);
  assert.ok(del.index > i3);
  assert.equal(ok<{ deleted: boolean }>(await http(node.url, kv(k), { method: 'DELETE' }), 'second delete').deleted, false);
  assertApiError(await get(node, k), 404, 'NOT_FOUND', 'get after delete');
}

async function checkListAndTxn(node: TestNode, p: string): Promise<void> {
  const prefix = `${p}list/`;
  for (let i = 0; i < 5; i++) writeIndex(await put(node, `${prefix}${i}`, `L${i}`), 'list put');
  writeIndex(await put(node, `${p}list`, 'not under the prefix'), 'list put');
  writeIndex(await put(node, `${p}lisu`, 'not under the prefix'), 'list put');
  const list = (query: string): Promise<{ items: KvRecordJson[]; more: boolean }> =>
    http(node.url, `/v1/kv?prefix=${encodeURIComponent(prefix)}${query}`).then((r) => ok(r, `list ${query}`));
  const three = await list('&limit=3');
  assert.deepEqual(three.items.map((r) => [r.key, r.value]), [0, 1, 2].map((i) => [`${prefix}${i}`, `L${i}`]));
  assert.equal(three.more, true);
  const five = await list('&limit=5');
  assert.equal(five.items.length, 5);
  assert.equal(five.more, false);
  assert.deepEqual((await list('')).items.map((r) => r.key), [0, 1, 2, 3, 4].map((i) => `${prefix}${i}`));

  const t = `${p}t`;
  writeIndex(await put(node, t, 'one'), 'txn setup');
  const yes = ok<{ succeeded: boolean; index: number; responses: unknown[] }>(
    await txn(node, {
      compare: [{ key: t, target: 'value', op: '=', value: 'one' }, { key: t, target: 'version', op: '=', value: 1 }],
      success: [{ type: 'put', key: `${t}2`, value: 'AAEC', encoding: 'base64' }, { type: 'get', key: t }],
      failure: [{ type: 'put', key: `${t}3`, value: 'three' }],
    }),
    'txn success',
  );
  assert.equal(yes.succeeded, true);
  assert.equal(yes.responses.length, 2);
  assert.deepEqual(yes.responses[0], { type: 'put', key: `${t}2` });
  assert.equal((yes.responses[1] as { record: KvRecordJson }).record.value, 'one');
  assert.deepEqual(new Uint8Array((await get(node, `${t}2`, '?raw')).body), Uint8Array.from([0, 1, 2]));
  assert.equal(ok<KvRecordJson>(await get(node, `${t}2`), 'txn put').modIndex, yes.index);
  assertApiError(await get(node, `${t}3`), 404, 'NOT_FOUND', 'the failure branch must not run');

  const no = ok<{ succeeded: boolean; index: number; responses: unknown[] }>(
    await txn(node, {
      compare: [{ key: t, target: 'version', op: '>', value: 5 }],
      success: [{ type: 'delete', key: t }],
      failure: [{ type: 'put', key: `${t}3`, value: 'three' }, { type: 'delete', key: `${t}2` }],
    }),
    'txn failure',
  );
  assert.equal(no.succeeded, false);
  assert.ok(no.index > yes.index);
  assert.deepEqual(no.responses, [{ type: 'put', key: `${t}3` }, { type: 'delete', key: `${t}2`, deleted: true }]);
  assert.equal(ok<KvRecordJson>(await get(node, `${t}3`), 'failure put').value, 'three');
  assertApiError(await get(node, `${t}2`), 404, 'NOT_FOUND', 'the failure branch deleted it');
  assert.equal(ok<KvRecordJson>(await get(node, t), 'success branch did not run').value, 'one');
}

async function checkIdempotency(cluster: TestCluster, node: TestNode, p: string): Promise<void> {
  // The retry goes through another node: the idempotency table is replicated state, not per node.
  const other = cluster.nodes[(cluster.nodes.indexOf(node) + 1) % cluster.nodes.length]!;
  const k = `${p}idem`;
  const headers = { 'idempotency-key': `basics-${node.id}/1` };
  const first = writeIndex(await put(node, k, 'first', '', headers), 'first attempt');
  const before = ok<KvRecordJson>(await get(node, k), 'after first');
  assert.equal(writeIndex(await put(other, k, 'first', '', headers), 'retry'), first, 'a retry answers the first result');
  assert.deepEqual(ok(await get(node, k), 'after retry'), before, 'a retry must not apply again');
  const second = writeIndex(await put(node, k, 'second'), 'a later write');
  assert.equal(writeIndex(await put(other, k, 'first', '', headers), 'late retry'), first);
  const after = ok<KvRecordJson>(await get(node, k), 'after late retry');
  assert.deepEqual([after.value, after.version, after.modIndex], ['second', 2, second], 'a late retry must not overwrite a newer write');

  const body = { compare: [], success: [{ type: 'put', key: `${k}-txn`, value: 'x' }], failure: [] };
  const txnHeaders = { 'idempotency-key': `basics-${node.id}/2` };
  const t1 = ok(await txn(node, body, txnHeaders), 'txn');
  assert.deepEqual(ok(await txn(other, body, txnHeaders), 'txn retry'), t1);
  assert.equal(ok<KvRecordJson>(await get(node, `${k}-txn`), 'txn once').version, 1);
}

async function checkStatusAndMetrics(cluster: TestCluster, node: TestNode, leader: TestNode): Promise<void> {
  const status = ok<NodeStatus>(await http(node.url, '/v1/status'), 'status');
  assert.equal(status.id, node.id);
  assert.equal(status.role, node === leader ? 'leader' : 'follower');
  assert.equal(status.leader, leader.id);
  assert.ok(status.appliedIndex <= status.commitIndex && status.commitIndex <= status.lastIndex && status.appliedIndex > 0, JSON.stringify(status));
  const expected = cluster.nodes.map((n) => ({ id: n.id, peerAddr: n.peerAddr, clientAddr: n.clientAddr, role: 'voter' }));
  const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
  assert.deepEqual([...status.members].sort(byId), expected);
  const members = ok<{ members: NodeStatus['members'] }>(await http(node.url, '/v1/members'), 'members');
  assert.deepEqual([...members.members].sort(byId), expected);

  const health = ok(await http(node.url, '/healthz'), 'healthz');
  assert.equal(health['ready'], true, 'healthz answers readiness: a leader with a quorum, applied');
  assert.equal(health['id'], node.id);
  assert.deepEqual(ok(await http(node.url, '/livez'), 'livez'), { live: true, id: node.id, starting: false });

  const metrics = await http(node.url, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(String(metrics.headers['content-type']), /^text\/plain/);
  for (const name of ['raftkv_raft_term', 'raftkv_raft_is_leader', 'raftkv_raft_commit_index', 'raftkv_raft_applied_index', 'raftkv_snapshots_installed_total', 'raftkv_http_requests_total']) {
    assert.match(metrics.text, new RegExp(`^# TYPE ${name} `, 'm'), `metric ${name}`);
  }
  // Counters the benchmark divides by applied entries: typed as counters, and moving.
  for (const name of ['process_cpu_seconds_total', 'raftkv_transport_writes_total']) {
    assert.match(metrics.text, new RegExp(`^# TYPE ${name} counter$`, 'm'), `metric ${name} is a counter`);
  }
  const parsed = parseMetrics(metrics.text);
  assert.ok((parsed.get('process_cpu_seconds_total') ?? 0) > 0, 'the process has spent CPU');
  assert.ok([...parsed].some(([k, v]) => k.startsWith('raftkv_transport_writes_total{peer=') && v > 0), 'writes to some peer were counted');
  assert.equal(parsed.get('raftkv_raft_is_leader'), node === leader ? 1 : 0);
  assert.equal(parsed.get('raftkv_raft_term'), status.term);
}

async function exerciseEveryNode(cluster: TestCluster, leader: TestNode): Promise<void> {
  for (const node of cluster.nodes) {
    const p = `basics/${node.id}/`;
    await checkPutGetAndReads(cluster, node, leader, p);
    await checkCompareAndSet(node, p);
    await checkListAndTxn(node, p);
    await checkIdempotency(cluster, node, p);
    await checkStatusAndMetrics(cluster, node, leader);
  }
  // A follower's writes went to the leader as proposals (src/server/proposals.ts), not as
  // forwarded HTTP requests; the leader forwarded none.
  for (const node of cluster.nodes) {
    const forwarded = (await node.metrics()).get('raftkv_forwarded_proposals_total{unit="commands"}');
    if (node === leader) assert.equal(forwarded, 0, 'the leader forwards no proposals');
    else assert.ok(forwarded !== undefined && forwarded >= 20, `${node.id} forwarded ${forwarded} proposals`);
  }
}

test('a 3-node cluster elects one leader and serves every endpoint through every node', { timeout: 60_000 }, async () => {
  const cluster = await TestCluster.start({ size: 3, name: 'basics3', extraArgs: ['--request-timeout-ms', '2000'] });
  clusters.push(cluster);
  const leader = await assertOneLeader(cluster);
  await exerciseEveryNode(cluster, leader);
  assert.equal((await cluster.waitForLeader()).id, leader.id, 'the leader did not change under light load');

  // Without a quorum, a stale read still answers from the survivor; a linearizable one cannot.
  const survivor = cluster.nodes.find((n) => n !== leader)!;
  const key = `basics/${survivor.id}/a`;
  // The leader's answers to malformed lease, membership and transfer requests, to compare with a
  // follower's answers below, when no leader is known.
  const leaderAnswers = new Map<string, string>();
  for (const request of MALFORMED_FORWARDED) {
    const answer = await answerOf(leader, request);
    assert.match(answer, /^4\d\d [A-Z_]+$/, `the leader's answer to ${request.join(' ')}`);
    leaderAnswers.set(request.join(' '), answer);
  }
  await cluster.waitApplied(survivor, (await leader.status())!.commitIndex);
  for (const n of cluster.nodes) if (n !== survivor) await n.stop('SIGKILL');
  assert.equal(ok<KvRecordJson>(await get(survivor, key, '?consistency=stale'), 'stale read without quorum').value, 'v1');
  for (const consistency of ['', '?consistency=linearizable', '?consistency=lease']) {
    const r = await get(survivor, key, consistency);
    assert.ok(r.status === 503 || r.status === 504, `a ${consistency || 'default'} read without a quorum answered ${r.status} ${r.text}`);
    assertApiError(r, r.status, ['NO_LEADER', 'NO_QUORUM', 'TIMEOUT'], 'read without quorum');
  }
  const write = await put(survivor, key, 'lost');
  assert.ok(write.status === 503 || write.status === 504, `a write without a quorum answered ${write.status} ${write.text}`);
  assertApiError(write, write.status, ['NO_LEADER', 'NO_QUORUM', 'TIMEOUT'], 'write without quorum');

  // Knowing no leader, the survivor still judges a request before it looks for one: a malformed
  // request is a 400 whoever leads (an election is no excuse to answer it 503), a valid one 503.
  await pollUntil(`${survivor.id} to know no leader`, 10_000, async () => ((await survivor.status())?.leader === null ? true : undefined));
  assertApiError(await http(survivor.url, '/v1/kv/%ZZ'), 400, 'BAD_KEY', 'a key that is not percent-encoding, with no leader');
  assertApiError(await http(survivor.url, '/v1/kv/%ZZ', { method: 'PUT', body: 'v' }), 400, 'BAD_KEY', 'a PUT of a key that is not percent-encoding, with no leader');
  const badJson = await http(survivor.url, '/v1/txn', { method: 'POST', body: '{' });
  assert.equal(badJson.status, 400, `a transaction that is not JSON, with no leader, answered ${badJson.status} ${badJson.text}`);
  const noLeader = await put(survivor, key, 'still lost');
  assertApiError(noLeader, 503, 'NO_LEADER', 'a valid write with no leader');
  // Lease, membership and transfer requests go to the leader whole, but are judged first: each
  // malformed one gets the leader's own answer, and only a valid one finds no leader.
  for (const request of MALFORMED_FORWARDED) {
    assert.equal(await answerOf(survivor, request), leaderAnswers.get(request.join(' ')), `${request.join(' ')} with no leader`);
  }
  assertApiError(await http(survivor.url, '/v1/leases', { method: 'POST', body: '{"ttlSeconds":30}' }), 503, 'NO_LEADER', 'a valid lease grant with no leader');
  assertApiError(await http(survivor.url, '/v1/leader/transfer', { method: 'POST' }), 503, 'NO_LEADER', 'a valid transfer with no leader');
});

/** "STATUS CODE" of a node's answer to [method, path, body]. */
async function answerOf(node: TestNode, [method, path, body]: readonly [string, string, string?]): Promise<string> {
  const r = await http(node.url, path, { method, ...(body !== undefined ? { body } : {}) });
  return `${r.status} ${r.status >= 400 ? r.json<{ error: { code: string } }>().error.code : r.text.slice(0, 200)}`;
}

/** Requests a follower forwards to the leader whole, each malformed: [method, path, body]. */
const MALFORMED_FORWARDED: readonly (readonly [string, string, string?])[] = [
  ['POST', '/v1/leases', '{'],
  ['POST', '/v1/leases', '{"ttlSeconds":0}'],
  ['POST', '/v1/leases', '{"ttlSeconds":30,"id":-1}'],
  ['POST', '/v1/leases', '{"ttlSeconds":30,"owner":"me"}'],
  ['POST', '/v1/leases?x=1', '{"ttlSeconds":30}'],
  ['GET', '/v1/leases?limit=0'],
  ['GET', '/v1/leases/abc'],
  ['GET', '/v1/leases/5?keys=maybe'],
  ['PUT', '/v1/leases/5'],
  ['POST', '/v1/leases/5/keepalive', '[1]'],
  ['GET', '/v1/leases/5/keepalive'],
  ['GET', '/v1/leases/5/other'],
  ['POST', '/v1/members', '{"id":"bad id","peerAddr":"127.0.0.1:1","clientAddr":"127.0.0.1:2"}'],
  ['POST', '/v1/members', '{"id":"n9","peerAddr":"127.0.0.1:1","clientAddr":"127.0.0.1:2","role":"boss"}'],
  ['POST', '/v1/members', '{"id":"n9","peerAddr":"no port","clientAddr":"127.0.0.1:2"}'],
  ['DELETE', '/v1/members/%ZZ'],
  ['DELETE', '/v1/members/n9?now=1'],
  ['PUT', '/v1/members/n9'],
  ['POST', '/v1/members/n9/promote', '{"x":1}'],
  ['POST', '/v1/leader/transfer', '{"to":5}'],
  ['POST', '/v1/leader/transfer?x=1'],
];

test('a 5-node cluster elects one leader and serves every endpoint through every node', { timeout: 60_000 }, async () => {
  const cluster = await TestCluster.start({ size: 5, name: 'basics5' });
  clusters.push(cluster);
  const leader = await assertOneLeader(cluster);
  await exerciseEveryNode(cluster, leader);
  assert.equal((await cluster.waitForLeader()).id, leader.id, 'the leader did not change under light load');
});
