// The etcd v3 gRPC API on a real 3-node cluster (`raftkv serve --etcd-addr`), driven by a bare
// @grpc/grpc-js client: writes on a follower read on another member, ranges with etcd's options,
// transactions, headers with etcd's fields, member list and status, and etcd's error codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { TestCluster, type TestNode } from '../cluster/harness.js';
import { b, EtcdTestClient, grpcError } from './etcd-client.js';

let cluster: TestCluster;
let leader: TestNode;
let followers: TestNode[];
const clients: EtcdTestClient[] = [];
const client = (n: TestNode): EtcdTestClient => {
  const c = new EtcdTestClient(n.etcdAddr!);
  clients.push(c);
  return c;
};

before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'etcd', etcdApi: true });
  leader = await cluster.waitForLeader();
  followers = cluster.nodes.filter((n) => n !== leader);
});
after(async () => {
  for (const c of clients) c.close();
  await cluster?.destroy();
});

test('every node has an etcd address, and a put on a follower is read on the other follower', async () => {
  for (const n of cluster.nodes) assert.match(n.etcdAddr ?? '', /^127\.0\.0\.1:\d+$/);
  const [f1, f2] = [client(followers[0]!), client(followers[1]!)];
  const put = await f1.call('KV', 'Put', { key: b('greeting'), value: b('hello') });
  assert.ok(Number(put.header.revision) > 1);
  const got = await f2.call('KV', 'Range', { key: b('greeting') });
  assert.equal(got.kvs.length, 1);
  assert.equal(got.kvs[0].value.toString(), 'hello');
  assert.equal(got.kvs[0].mod_revision, put.header.revision);
  assert.equal(got.count, '1');
});

test('response headers carry the cluster id, the member id of the answering node, the revision and the term', async () => {
  const answers = await Promise.all(cluster.nodes.map((n) => client(n).call('KV', 'Range', { key: b('greeting') })));
  const clusterIds = new Set(answers.map((a) => a.header.cluster_id));
  assert.equal(clusterIds.size, 1);
  assert.notEqual([...clusterIds][0], '0');
  assert.equal(new Set(answers.map((a) => a.header.member_id)).size, 3);
  for (const a of answers) {
    assert.ok(BigInt(a.header.raft_term) >= 1n);
    assert.ok(BigInt(a.header.revision) >= 2n);
  }
  const members = await client(leader).call('Cluster', 'MemberList', {});
  assert.equal(members.members.length, 3);
  assert.deepEqual(new Set(members.members.map((m: { ID: string }) => m.ID)), new Set(answers.map((a) => a.header.member_id)));
  const status0 = await client(followers[0]!).call('Maintenance', 'Status', {});
  assert.match(status0.version, /^3\.4\./);
  assert.equal(status0.leader, answers[cluster.nodes.indexOf(leader)].header.member_id);
  assert.ok(Number(status0.raftIndex) > 0);
  assert.ok(Number(status0.dbSize) > 0);
});

test('ranges: prefix, from-key, limit with more and count, keys only, count only, sort, and a past revision', async () => {
  const c = client(followers[0]!);
  const revs: number[] = [];
  for (const [k, v] of [['r/a', '3'], ['r/b', '1'], ['r/c', '2'], ['s/x', '0']] as const) revs.push(Number((await c.call('KV', 'Put', { key: b(k), value: b(v) })).header.revision));
  const prefix = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0') });
  assert.deepEqual(prefix.kvs.map((kv: { key: Buffer }) => kv.key.toString()), ['r/a', 'r/b', 'r/c']);
  const limited = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), limit: 2 });
  assert.equal(limited.kvs.length, 2);
  assert.equal(limited.more, true);
  assert.equal(limited.count, '3');
  const fromKey = await c.call('KV', 'Range', { key: b('r/c'), range_end: Buffer.from([0]) });
  assert.deepEqual(fromKey.kvs.map((kv: { key: Buffer }) => kv.key.toString()), ['r/c', 's/x']);
  const keysOnly = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), keys_only: true });
  assert.equal(keysOnly.kvs[0].value.length, 0);
  const countOnly = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), count_only: true });
  assert.equal(countOnly.kvs.length, 0);
  assert.equal(countOnly.count, '3');
  const byValueDesc = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), sort_target: 'VALUE', sort_order: 'DESCEND' });
  assert.deepEqual(byValueDesc.kvs.map((kv: { value: Buffer }) => kv.value.toString()), ['3', '2', '1']);
  const lastCreated = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), sort_target: 'CREATE', sort_order: 'DESCEND', limit: 1 });
  assert.equal(lastCreated.kvs[0].key.toString(), 'r/c');
  const maxCreate = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), max_create_revision: revs[1] });
  assert.deepEqual(maxCreate.kvs.map((kv: { key: Buffer }) => kv.key.toString()), ['r/a', 'r/b']);
  const past = await c.call('KV', 'Range', { key: b('r/'), range_end: b('r0'), revision: revs[0] });
  assert.deepEqual(past.kvs.map((kv: { key: Buffer }) => kv.key.toString()), ['r/a']);
  const serializable = await client(followers[1]!).call('KV', 'Range', { key: b('r/a'), serializable: true });
  assert.ok(serializable.kvs.length <= 1);
});

test('put with prev_kv, delete range with prev_kv, and etcd errors for an empty key and a future revision', async () => {
  const c = client(followers[1]!);
  await c.call('KV', 'Put', { key: b('p/1'), value: b('old') });
  const put = await c.call('KV', 'Put', { key: b('p/1'), value: b('new'), prev_kv: true });
  assert.equal(put.prev_kv.value.toString(), 'old');
  await c.call('KV', 'Put', { key: b('p/2'), value: b('two') });
  const del = await c.call('KV', 'DeleteRange', { key: b('p/'), range_end: b('p0'), prev_kv: true });
  assert.equal(del.deleted, '2');
  assert.deepEqual(del.prev_kvs.map((kv: { key: Buffer }) => kv.key.toString()).sort(), ['p/1', 'p/2']);
  const empty = await grpcError(c.call('KV', 'Put', { key: b(''), value: b('x') }));
  assert.equal(empty.code, status.INVALID_ARGUMENT);
  assert.equal(empty.details, 'etcdserver: key is not provided');
  const future = await grpcError(c.call('KV', 'Range', { key: b('p/1'), revision: 1_000_000 }));
  assert.equal(future.code, status.OUT_OF_RANGE);
  assert.equal(future.details, 'etcdserver: mvcc: required revision is a future revision');
});

test('txn: compares on value, version, create and mod revision pick the branch; reads see the branch writes', async () => {
  const c = client(followers[0]!);
  const put = await c.call('KV', 'Put', { key: b('t/k'), value: b('v1') });
  const rev = put.header.revision;
  const ok = await c.call('KV', 'Txn', {
    compare: [
      { key: b('t/k'), target: 'VALUE', result: 'EQUAL', value: b('v1') },
      { key: b('t/k'), target: 'VERSION', result: 'EQUAL', version: 1 },
      { key: b('t/k'), target: 'MOD', result: 'EQUAL', mod_revision: rev },
      { key: b('t/k'), target: 'CREATE', result: 'EQUAL', create_revision: rev },
      { key: b('t/none'), target: 'CREATE', result: 'EQUAL', create_revision: 0 },
    ],
    success: [{ request_put: { key: b('t/k'), value: b('v2'), prev_kv: true } }, { request_range: { key: b('t/'), range_end: b('t0') } }],
    failure: [{ request_range: { key: b('t/k') } }],
  });
  assert.equal(ok.succeeded, true);
  assert.equal(ok.responses[0].response_put.prev_kv.value.toString(), 'v1');
  assert.equal(ok.responses[1].response_range.kvs[0].value.toString(), 'v2');
  const no = await c.call('KV', 'Txn', {
    compare: [{ key: b('t/k'), target: 'VALUE', result: 'EQUAL', value: b('v1') }],
    success: [{ request_put: { key: b('t/k'), value: b('never') } }],
    failure: [{ request_range: { key: b('t/k') } }],
  });
  assert.equal(no.succeeded, false);
  assert.equal(no.responses[0].response_range.kvs[0].value.toString(), 'v2');
});
