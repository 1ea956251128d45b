// The etcd v3 gRPC API on a real 3-node cluster (`raftkv serve --etcd-addr`), driven by a bare
// @grpc/grpc-js client: writes on a follower read on another member, ranges with etcd's options,
// transactions, headers with etcd's fields, member list and status, and etcd's error codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { pollUntil, TestCluster, type TestNode } from '../cluster/harness.js';
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
  // Every member's client URL is its etcd endpoint (the registry replicates --etcd-addr, which
  // each member registers itself shortly after it starts).
  const etcdUrls = new Set(cluster.nodes.map((n) => `http://${n.etcdAddr}`));
  const members = await pollUntil('every member registered its etcd address', 10_000, async () => {
    const m = await client(leader).call('Cluster', 'MemberList', {});
    return m.members.every((x: { clientURLs: string[] }) => etcdUrls.has(x.clientURLs[0]!)) ? m : undefined;
  });
  assert.equal(members.members.length, 3);
  assert.deepEqual(new Set(members.members.map((m: { clientURLs: string[] }) => m.clientURLs[0])), new Set(cluster.nodes.map((n) => `http://${n.etcdAddr}`)));
  assert.deepEqual(new Set(members.members.map((m: { name: string }) => m.name)), new Set(cluster.nodes.map((n) => n.id)));
  assert.deepEqual(new Set(members.members.map((m: { ID: string }) => m.ID)), new Set(answers.map((a) => a.header.member_id)));
  const status0 = await client(followers[0]!).call('Maintenance', 'Status', {});
  assert.match(status0.version, /^3\.4\./);
  assert.equal(status0.leader, answers[cluster.nodes.indexOf(leader)].header.member_id);
  assert.ok(Number(status0.raftIndex) > 0);
  assert.ok(Number(status0.dbSize) > 0);
  const alarms = await client(followers[0]!).call('Maintenance', 'Alarm', { action: 'GET' });
  assert.deepEqual(alarms.alarms, [], 'no alarm on a cluster with room');
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

/** Reads WatchResponses from a stream into a queue; next() waits (bounded) for the next one. */
class Responses<T> {
  private readonly queue: T[] = [];
  private waiter: (() => void) | null = null;
  constructor(stream: NodeJS.EventEmitter) {
    stream.on('data', (m: T) => {
      this.queue.push(m);
      this.waiter?.();
    });
    stream.on('error', () => undefined);
  }
  async next(timeoutMs = 5000): Promise<T> {
    const until = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (Date.now() > until) throw new Error('no message within the deadline');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50);
      });
    }
    return this.queue.shift()!;
  }
}

test('watch: many watches on one stream, events from a put on another node, prev_kv, filters, cancel, and compaction', async () => {
  const c = client(followers[0]!);
  const stream = c.stream('Watch', 'Watch');
  const got = new Responses<any>(stream); // eslint-disable-line @typescript-eslint/no-explicit-any
  stream.write({ create_request: { key: b('w/'), range_end: b('w0'), prev_kv: true } });
  const created = await got.next();
  assert.equal(created.created, true);
  assert.equal(created.watch_id, '0');
  stream.write({ create_request: { key: b('w/a'), filters: ['NOPUT'] } });
  const created2 = await got.next();
  assert.equal(created2.watch_id, '1');
  const other = client(followers[1]!);
  await other.call('KV', 'Put', { key: b('w/a'), value: b('1') });
  await other.call('KV', 'Put', { key: b('w/a'), value: b('2') });
  await other.call('KV', 'DeleteRange', { key: b('w/a') });
  const seen: { id: string; type: string; value: string; prev: string | null }[] = [];
  while (seen.length < 4) {
    const r = await got.next();
    for (const ev of r.events) seen.push({ id: r.watch_id, type: ev.type, value: ev.kv.value.toString(), prev: ev.prev_kv === null ? null : ev.prev_kv.value.toString() });
  }
  // Each watch's events in order; the two watches' responses may interleave.
  seen.sort((x, y) => x.id.localeCompare(y.id));
  assert.deepEqual(seen, [
    { id: '0', type: 'PUT', value: '1', prev: null },
    { id: '0', type: 'PUT', value: '2', prev: '1' },
    { id: '0', type: 'DELETE', value: '', prev: '2' },
    { id: '1', type: 'DELETE', value: '', prev: null },
  ].sort((x, y) => x.id.localeCompare(y.id)));
  stream.write({ cancel_request: { watch_id: 0 } });
  const canceled = await got.next();
  assert.equal(canceled.canceled, true);
  assert.equal(canceled.watch_id, '0');
  // Compact, then watch from before the compaction: created, then canceled with compact_revision.
  const head = Number((await other.call('KV', 'Put', { key: b('w/z'), value: b('z') })).header.revision);
  await client(leader).call('KV', 'Compact', { revision: head });
  // The watch is served by its member's applied state (as etcd's are): a linearizable read there
  // first, so that member has applied the compaction the leader answered for.
  await c.call('KV', 'Range', { key: b('w/z') });
  stream.write({ create_request: { key: b('w/z'), start_revision: 2 } });
  const late = await got.next();
  assert.equal(late.created, true);
  const cut = await got.next();
  assert.equal(cut.canceled, true);
  assert.equal(cut.compact_revision, String(head));
  const compacted = await grpcError(c.call('KV', 'Range', { key: b('w/z'), revision: 2 }));
  assert.equal(compacted.code, status.OUT_OF_RANGE);
  assert.equal(compacted.details, 'etcdserver: mvcc: required revision has been compacted');
  stream.end();
});

test('leases: grant on a follower, attach a key, keep alive over a stream, time to live with keys, revoke deletes the key', async () => {
  const c = client(followers[1]!);
  const granted = await c.call('Lease', 'LeaseGrant', { TTL: 30 });
  const id = granted.ID;
  assert.ok(Number(id) > 0);
  assert.equal(granted.TTL, '30');
  await c.call('KV', 'Put', { key: b('l/key'), value: b('v'), lease: id });
  const ka = c.stream('Lease', 'LeaseKeepAlive');
  const answers = new Responses<any>(ka); // eslint-disable-line @typescript-eslint/no-explicit-any
  ka.write({ ID: id });
  const renewed = await answers.next();
  assert.equal(renewed.ID, id);
  assert.equal(renewed.TTL, '30');
  const ttl = await c.call('Lease', 'LeaseTimeToLive', { ID: id, keys: true });
  assert.equal(ttl.grantedTTL, '30');
  assert.ok(Number(ttl.TTL) > 0 && Number(ttl.TTL) <= 30);
  assert.deepEqual(ttl.keys.map((k: Buffer) => k.toString()), ['l/key']);
  const list = await client(leader).call('Lease', 'LeaseLeases', {});
  assert.ok(list.leases.some((l: { ID: string }) => l.ID === id));
  await c.call('Lease', 'LeaseRevoke', { ID: id });
  const gone = await c.call('KV', 'Range', { key: b('l/key') });
  assert.equal(gone.kvs.length, 0);
  ka.write({ ID: id });
  assert.equal((await answers.next()).TTL, '0');
  assert.equal((await c.call('Lease', 'LeaseTimeToLive', { ID: id })).TTL, '-1');
  const missing = await grpcError(c.call('Lease', 'LeaseRevoke', { ID: id }));
  assert.equal(missing.code, status.NOT_FOUND);
  assert.equal(missing.details, 'etcdserver: requested lease not found');
  const noLease = await grpcError(c.call('KV', 'Put', { key: b('l/other'), value: b('v'), lease: id }));
  assert.equal(noLease.code, status.NOT_FOUND);
  ka.end();
});

test('v3lock: a second Lock waits until the first unlocks; keys are NAME/LEASE-HEX and create revisions grow', async () => {
  const c1 = client(followers[0]!);
  const c2 = client(followers[1]!);
  const l1 = (await c1.call('Lease', 'LeaseGrant', { TTL: 30 })).ID;
  const l2 = (await c2.call('Lease', 'LeaseGrant', { TTL: 30 })).ID;
  const first = await c1.call('Lock', 'Lock', { name: b('mutex'), lease: l1 });
  assert.equal(first.key.toString(), `mutex/${BigInt(l1).toString(16)}`);
  let secondDone = false;
  const second = c2.call('Lock', 'Lock', { name: b('mutex'), lease: l2 }, 10_000).then((r) => {
    secondDone = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(secondDone, false, 'the second Lock waits while the first holds it');
  await c1.call('Lock', 'Unlock', { key: first.key });
  const got = await second;
  assert.equal(got.key.toString(), `mutex/${BigInt(l2).toString(16)}`);
  const held = await c1.call('KV', 'Range', { key: got.key });
  assert.ok(Number(held.kvs[0].create_revision) > Number(first.header.revision) - 1);
  // A Lock with a deadline shorter than the wait fails with DEADLINE_EXCEEDED and leaves no key.
  const l3 = (await c1.call('Lease', 'LeaseGrant', { TTL: 30 })).ID;
  const timedOut = await grpcError(c1.call('Lock', 'Lock', { name: b('mutex'), lease: l3 }, 500));
  assert.equal(timedOut.code, status.DEADLINE_EXCEEDED);
  await new Promise((r) => setTimeout(r, 500));
  const line = await c1.call('KV', 'Range', { key: b('mutex/'), range_end: b('mutex0') });
  assert.deepEqual(line.kvs.map((kv: { key: Buffer }) => kv.key.toString()), [got.key.toString()]);
  await c2.call('Lock', 'Unlock', { key: got.key });
});

test('v3election: campaign, leader, proclaim, observe, resign; a stale leader key cannot proclaim', async () => {
  const c = client(followers[0]!);
  const lease = (await c.call('Lease', 'LeaseGrant', { TTL: 30 })).ID;
  const observer = c.serverStream('Election', 'Observe', { name: b('chief') });
  const seen = new Responses<any>(observer); // eslint-disable-line @typescript-eslint/no-explicit-any
  const won = await c.call('Election', 'Campaign', { name: b('chief'), lease, value: b('alpha') });
  assert.equal(won.leader.key.toString(), `chief/${BigInt(lease).toString(16)}`);
  const leader = await client(followers[1]!).call('Election', 'Leader', { name: b('chief') });
  assert.equal(leader.kv.value.toString(), 'alpha');
  assert.equal((await seen.next()).kv.value.toString(), 'alpha');
  await c.call('Election', 'Proclaim', { leader: won.leader, value: b('beta') });
  assert.equal((await seen.next()).kv.value.toString(), 'beta');
  await c.call('Election', 'Resign', { leader: won.leader });
  const none = await grpcError(c.call('Election', 'Leader', { name: b('chief') }));
  assert.equal(none.details, 'election: no leader');
  const stale = await grpcError(c.call('Election', 'Proclaim', { leader: won.leader, value: b('gamma') }));
  assert.equal(stale.details, 'election: not leader');
  observer.cancel();
});

test('without a quorum: writes and linearizable reads are UNAVAILABLE with etcd messages; serializable reads still answer', async () => {
  // Last in this file: it takes the cluster's quorum away.
  const survivor = followers[0]!;
  await Promise.all(cluster.nodes.filter((n) => n !== survivor).map((n) => n.stop('SIGKILL')));
  const c = client(survivor);
  const put = await grpcError(c.call('KV', 'Put', { key: b('lonely'), value: b('v') }, 8000));
  assert.equal(put.code, status.UNAVAILABLE, put.details);
  assert.ok(['etcdserver: no leader', 'etcdserver: request timed out'].includes(put.details), put.details);
  const read = await grpcError(c.call('KV', 'Range', { key: b('greeting') }, 8000));
  assert.equal(read.code, status.UNAVAILABLE, read.details);
  const stale = await c.call('KV', 'Range', { key: b('greeting'), serializable: true });
  assert.equal(stale.kvs[0].value.toString(), 'hello');
});
