// proto/etcd/rpc.proto and v3lock.proto against etcd's wire format, without an etcd: requests encode to the bytes
// etcd's documented field numbers give, and answers built by hand from those numbers decode into
// the shapes bench/grpc/etcd-proto.ts declares (64-bit ids exact, as decimal strings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdMethods } from '../../bench/grpc/etcd-proto.js';

// Protobuf by hand: a varint, a key (field number << 3 | wire type), a length-delimited field.
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}
const tag = (field: number, wireType: number): number[] => varint(BigInt((field << 3) | wireType));
const int = (field: number, n: bigint): number[] => [...tag(field, 0), ...varint(n)];
const bytes = (field: number, b: readonly number[] | string): number[] => {
  const body = typeof b === 'string' ? [...Buffer.from(b)] : [...b];
  return [...tag(field, 2), ...varint(BigInt(body.length)), ...body];
};

const BIG_ID = 0xfedcba9876543210n; // above 2^53: must survive as a string, not a float
// Lease ids are int64 (etcd hands out positive ones): above 2^53, below 2^63.
const LEASE_ID = 0x7edcba9876543210n;

test('the gRPC paths are etcd\'s: /etcdserverpb.<Service>/<Method>', () => {
  const m = etcdMethods();
  assert.deepEqual([m.put.path, m.range.path, m.memberList.path, m.status.path], [
    '/etcdserverpb.KV/Put', '/etcdserverpb.KV/Range', '/etcdserverpb.Cluster/MemberList', '/etcdserverpb.Maintenance/Status',
  ]);
});

test('PutRequest and RangeRequest encode with etcd\'s field numbers', () => {
  const m = etcdMethods();
  assert.deepEqual([...m.put.serialize({ key: Buffer.from('k'), value: Buffer.from('v'), prev_kv: true })], [...bytes(1, 'k'), ...bytes(2, 'v'), ...int(4, 1n)]);
  assert.deepEqual(
    [...m.range.serialize({ key: Buffer.from('a'), range_end: Buffer.from('b'), limit: 5, serializable: true, count_only: true })],
    [...bytes(1, 'a'), ...bytes(2, 'b'), ...int(3, 5n), ...int(7, 1n), ...int(9, 1n)],
  );
});

test('answers decode: the header names the member that answered, exactly', () => {
  const m = etcdMethods();
  const header = bytes(1, [...int(1, 7n), ...int(2, BIG_ID), ...int(3, 42n), ...int(4, 3n)]);
  const put = m.put.deserialize(Buffer.from(header));
  assert.deepEqual(put.header, { cluster_id: '7', member_id: BIG_ID.toString(), revision: '42', raft_term: '3' });
  assert.equal(put.prev_kv, null);

  const kv = bytes(2, [...bytes(1, 'bench-000001'), ...int(2, 5n), ...int(3, 9n), ...int(4, 2n), ...bytes(5, 'value'), ...int(6, 0n)]);
  const range = m.range.deserialize(Buffer.from([...header, ...kv, ...int(3, 1n), ...int(4, 12n)]));
  assert.equal(range.kvs.length, 1);
  assert.equal(range.kvs[0]!.key.toString(), 'bench-000001');
  assert.equal(range.kvs[0]!.value.toString(), 'value');
  assert.deepEqual([range.kvs[0]!.create_revision, range.kvs[0]!.mod_revision, range.kvs[0]!.version], ['5', '9', '2']);
  assert.deepEqual([range.more, range.count], [true, '12']);
});

test('MemberListResponse and StatusResponse decode ids, names, URLs and the leader', () => {
  const m = etcdMethods();
  const member = bytes(2, [...int(1, BIG_ID), ...bytes(2, 'e1'), ...bytes(3, 'http://127.0.0.1:2380'), ...bytes(4, 'http://127.0.0.1:2379'), ...int(5, 1n)]);
  const list = m.memberList.deserialize(Buffer.from(member));
  assert.deepEqual(list.members.map((x) => ({ ...x })), [
    { ID: BIG_ID.toString(), name: 'e1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: true },
  ]);

  const status = m.status.deserialize(Buffer.from([...bytes(2, '3.4.23'), ...int(3, 4096n), ...int(4, BIG_ID), ...int(5, 10n), ...int(6, 2n), ...int(7, 9n), ...bytes(8, 'NOSPACE')]));
  assert.deepEqual([status.version, status.leader, status.raftIndex, status.raftTerm, status.raftAppliedIndex, status.errors], ['3.4.23', BIG_ID.toString(), '10', '2', '9', ['NOSPACE']]);
  assert.equal(m.status.deserialize(Buffer.alloc(0)).leader, '0', 'no leader known reads "0"');
});

test('watch, lease and lock paths are etcd\'s, the streams are bidirectional', () => {
  const m = etcdMethods();
  assert.deepEqual([m.watch.path, m.leaseGrant.path, m.leaseRevoke.path, m.leaseKeepAlive.path, m.leaseTimeToLive.path, m.leaseLeases.path, m.lock.path, m.unlock.path, m.deleteRange.path, m.txn.path], [
    '/etcdserverpb.Watch/Watch', '/etcdserverpb.Lease/LeaseGrant', '/etcdserverpb.Lease/LeaseRevoke', '/etcdserverpb.Lease/LeaseKeepAlive',
    '/etcdserverpb.Lease/LeaseTimeToLive', '/etcdserverpb.Lease/LeaseLeases', '/v3lockpb.Lock/Lock', '/v3lockpb.Lock/Unlock',
    '/etcdserverpb.KV/DeleteRange', '/etcdserverpb.KV/Txn',
  ]);
  assert.equal(m.watch.isBidi, true);
  assert.equal(m.leaseKeepAlive.isBidi, true);
});

test('WatchRequest encodes create (1), cancel (2) and progress (3) with etcd\'s numbers', () => {
  const m = etcdMethods();
  const create = m.watch.serialize({ create_request: { key: Buffer.from('p/'), range_end: Buffer.from('p0'), start_revision: '5', progress_notify: true, filters: ['NODELETE'], prev_kv: true, watch_id: 3, fragment: true } });
  assert.deepEqual([...create], [...bytes(1, [...bytes(1, 'p/'), ...bytes(2, 'p0'), ...int(3, 5n), ...int(4, 1n), ...bytes(5, [1]), ...int(6, 1n), ...int(7, 3n), ...int(8, 1n)])]);
  assert.deepEqual([...m.watch.serialize({ cancel_request: { watch_id: 9 } })], [...bytes(2, int(1, 9n))]);
  assert.deepEqual([...m.watch.serialize({ progress_request: {} })], [...bytes(3, [])]);
});

test('WatchResponse decodes its flags, ids and events (field 11)', () => {
  const m = etcdMethods();
  const header = bytes(1, [...int(2, BIG_ID), ...int(3, 77n)]);
  const kv = [...bytes(1, 'p/1'), ...int(2, 70n), ...int(3, 77n), ...int(4, 1n), ...bytes(5, 'v'), ...int(6, 0n)];
  const put = bytes(11, [...int(1, 0n), ...bytes(2, kv)]);
  const del = bytes(11, [...int(1, 1n), ...bytes(2, [...bytes(1, 'p/2'), ...int(3, 77n)]), ...bytes(3, kv)]);
  const r = m.watch.deserialize(Buffer.from([...header, ...int(2, 4n), ...int(3, 1n), ...int(4, 1n), ...int(5, 60n), ...bytes(6, 'why'), ...int(7, 1n), ...put, ...del]));
  assert.deepEqual([r.header?.member_id, r.header?.revision, r.watch_id, r.created, r.canceled, r.compact_revision, r.cancel_reason, r.fragment], [BIG_ID.toString(), '77', '4', true, true, '60', 'why', true]);
  assert.deepEqual(r.events.map((e) => [e.type, e.kv?.key.toString(), e.kv?.mod_revision, e.prev_kv?.value.toString() ?? null]), [['PUT', 'p/1', '77', null], ['DELETE', 'p/2', '77', 'v']]);
});

test('lease messages use etcd\'s numbers; 64-bit lease ids stay exact', () => {
  const m = etcdMethods();
  assert.deepEqual([...m.leaseGrant.serialize({ TTL: 10, ID: LEASE_ID.toString() })], [...int(1, 10n), ...int(2, LEASE_ID)]);
  const granted = m.leaseGrant.deserialize(Buffer.from([...bytes(1, int(3, 5n)), ...int(2, LEASE_ID), ...int(3, 10n), ...bytes(4, 'no')]));
  assert.deepEqual([granted.ID, granted.TTL, granted.error, granted.header?.revision], [LEASE_ID.toString(), '10', 'no', '5']);
  assert.deepEqual([...m.leaseKeepAlive.serialize({ ID: LEASE_ID.toString() })], [...int(1, LEASE_ID)]);
  assert.deepEqual([...m.leaseRevoke.serialize({ ID: 7 })], [...int(1, 7n)]);
  const kept = m.leaseKeepAlive.deserialize(Buffer.from([...int(2, LEASE_ID), ...int(3, 9n)]));
  assert.deepEqual([kept.ID, kept.TTL], [LEASE_ID.toString(), '9']);
  assert.deepEqual([...m.leaseTimeToLive.serialize({ ID: 7, keys: true })], [...int(1, 7n), ...int(2, 1n)]);
  const ttl = m.leaseTimeToLive.deserialize(Buffer.from([...int(2, 7n), ...int(3, 4n), ...int(4, 10n), ...bytes(5, 'a'), ...bytes(5, 'b')]));
  assert.deepEqual([ttl.ID, ttl.TTL, ttl.grantedTTL, ttl.keys.map((k) => k.toString())], ['7', '4', '10', ['a', 'b']]);
  const leases = m.leaseLeases.deserialize(Buffer.from([...bytes(2, int(1, 7n)), ...bytes(2, int(1, LEASE_ID))]));
  assert.deepEqual(leases.leases.map((l) => l.ID), ['7', LEASE_ID.toString()]);
});

test('v3lock messages use etcd\'s numbers (name 1, lease 2; header 1, key 2)', () => {
  const m = etcdMethods();
  assert.deepEqual([...m.lock.serialize({ name: Buffer.from('L'), lease: LEASE_ID.toString() })], [...bytes(1, 'L'), ...int(2, LEASE_ID)]);
  const locked = m.lock.deserialize(Buffer.from([...bytes(1, int(3, 12n)), ...bytes(2, 'L/abc')]));
  assert.deepEqual([locked.header?.revision, locked.key.toString()], ['12', 'L/abc']);
  assert.deepEqual([...m.unlock.serialize({ key: Buffer.from('L/abc') })], [...bytes(1, 'L/abc')]);
  assert.equal(m.unlock.deserialize(Buffer.from(bytes(1, int(3, 13n)))).header?.revision, '13');
});

test('DeleteRange and Txn use etcd\'s numbers, the oneofs included', () => {
  const m = etcdMethods();
  assert.deepEqual([...m.deleteRange.serialize({ key: Buffer.from('a'), range_end: Buffer.from('b'), prev_kv: true })], [...bytes(1, 'a'), ...bytes(2, 'b'), ...int(3, 1n)]);
  const deleted = m.deleteRange.deserialize(Buffer.from([...int(2, 2n)]));
  assert.equal(deleted.deleted, '2');
  const txn = m.txn.serialize({
    compare: [{ result: 'EQUAL', target: 'CREATE', key: Buffer.from('k'), create_revision: 0, range_end: Buffer.from('l') }],
    success: [{ request_put: { key: Buffer.from('k'), value: Buffer.from('v'), lease: 7 } }],
    failure: [{ request_range: { key: Buffer.from('k') } }, { request_delete_range: { key: Buffer.from('k') } }],
  });
  assert.deepEqual([...txn], [
    // A field given explicitly is written even at its default (EQUAL = 0, create_revision 0);
    // etcd reads the same message either way, and a oneof member must be written to count.
    ...bytes(1, [...int(1, 0n), ...int(2, 1n), ...bytes(3, 'k'), ...int(5, 0n), ...bytes(64, 'l')]),
    ...bytes(2, bytes(2, [...bytes(1, 'k'), ...bytes(2, 'v'), ...int(3, 7n)])),
    ...bytes(3, bytes(1, bytes(1, 'k'))),
    ...bytes(3, bytes(3, bytes(1, 'k'))),
  ]);
  const answer = m.txn.deserialize(Buffer.from([...int(2, 1n), ...bytes(3, bytes(2, bytes(1, int(3, 8n))))]));
  assert.equal(answer.succeeded, true);
  assert.equal(answer.responses[0]?.response_put?.header?.revision, '8');
  assert.equal(answer.responses[0]?.response_range, undefined);
});
