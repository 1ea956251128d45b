// proto/etcd/rpc.proto against etcd's wire format, without an etcd: requests encode to the bytes
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
