// The etcd v3 API of a secure cluster: the gRPC port is TLS with the client port's certificate,
// and --auth-file applies as on the HTTP API: a token as `token` metadata (what etcd's clients
// send) or `authorization: Bearer`, etcd's errors for a missing or unknown token, and the same
// prefix permissions (a reader may read its prefix, and nothing else).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Metadata, status } from '@grpc/grpc-js';
import { makeTempDir, TestCluster, type TestNode } from '../cluster/harness.js';
import { b, EtcdTestClient, grpcError } from './etcd-client.js';

let cluster: TestCluster;
let follower: TestNode;
const clients: EtcdTestClient[] = [];
const READER_TOKEN = 'reader-token-0123456789abcdef';
const WRITER_TOKEN = 'writer-token-0123456789abcdef';

function client(token?: string, insecure = false): EtcdTestClient {
  const c = new EtcdTestClient(follower.etcdAddr!, insecure ? {} : { ca: cluster.security!.client.ca, ...(token !== undefined ? { token } : {}) });
  clients.push(c);
  return c;
}

before(async () => {
  cluster = new TestCluster({ root: makeTempDir('etcd-secure'), secure: true, etcdApi: true });
  const security = cluster.security!;
  writeFileSync(
    security.authFile,
    JSON.stringify({
      principals: [
        { name: 'admin', token: security.adminToken, permissions: [{ access: 'admin' }] },
        { name: 'reader', token: READER_TOKEN, permissions: [{ access: 'read', prefix: 'app/' }] },
        { name: 'writer', token: WRITER_TOKEN, permissions: [{ access: 'readwrite', prefix: 'app/' }] },
      ],
    }),
    { mode: 0o600 },
  );
  await cluster.startFounders(3);
  const leader = await cluster.waitForReady(15_000);
  follower = cluster.nodes.find((n) => n !== leader)!;
});
after(async () => {
  for (const c of clients) c.close();
  await cluster?.destroy();
});

test('the gRPC port speaks only TLS: a plaintext client gets no answer', async () => {
  const err = await grpcError(client(undefined, true).call('KV', 'Range', { key: b('app/x') }, 3000));
  assert.equal(err.code, status.UNAVAILABLE);
});

test("a missing token is etcd's 'user name is empty', a wrong one 'invalid auth token'", async () => {
  const missing = await grpcError(client().call('KV', 'Range', { key: b('app/x') }));
  assert.equal(missing.code, status.INVALID_ARGUMENT);
  assert.equal(missing.details, 'etcdserver: user name is empty');
  const wrong = await grpcError(client('not-a-token').call('KV', 'Range', { key: b('app/x') }));
  assert.equal(wrong.code, status.UNAUTHENTICATED);
  assert.equal(wrong.details, 'etcdserver: invalid auth token');
  const stream = client('not-a-token').stream('Watch', 'Watch');
  const closed = await new Promise<{ code: number }>((resolve) => stream.on('error', resolve));
  assert.equal(closed.code, status.UNAUTHENTICATED);
});

test('the admin token writes through a follower (as `token` metadata and as a Bearer header)', async () => {
  const admin = client(cluster.security!.adminToken);
  await admin.call('KV', 'Put', { key: b('app/x'), value: b('1') });
  const md = new Metadata();
  md.set('authorization', `Bearer ${cluster.security!.adminToken}`);
  const got = await admin.call('KV', 'Range', { key: b('app/x') }, 10_000, md);
  assert.equal(got.kvs[0].value.toString(), '1');
  const lease = await admin.call('Lease', 'LeaseGrant', { TTL: 10 });
  assert.ok(Number(lease.ID) > 0);
});

test('a reader reads its prefix and is denied writes and reads outside it, as etcd denies them', async () => {
  const reader = client(READER_TOKEN);
  const got = await reader.call('KV', 'Range', { key: b('app/'), range_end: b('app0') });
  assert.equal(got.kvs.length, 1);
  for (const p of [
    reader.call('KV', 'Put', { key: b('app/x'), value: b('2') }),
    reader.call('KV', 'Range', { key: b('other') }),
    reader.call('KV', 'Range', { key: b('a'), range_end: Buffer.from([0]) }),
    reader.call('KV', 'DeleteRange', { key: b('app/x') }),
    reader.call('KV', 'Txn', { compare: [], success: [{ request_put: { key: b('app/y'), value: b('v') } }], failure: [] }),
    reader.call('KV', 'Compact', { revision: 1 }),
  ]) {
    const err = await grpcError(p);
    assert.equal(err.code, status.PERMISSION_DENIED);
    assert.equal(err.details, 'etcdserver: permission denied');
  }
  const stream = reader.stream('Watch', 'Watch');
  const answer = new Promise<{ canceled: boolean; cancel_reason: string }>((resolve) => stream.on('data', resolve));
  stream.write({ create_request: { key: b('other') } });
  const a = await answer;
  assert.equal(a.canceled, true);
  assert.equal(a.cancel_reason, 'etcdserver: permission denied');
  stream.end();
  const x = await client(cluster.security!.adminToken).call('KV', 'Range', { key: b('app/x') });
  assert.equal(x.kvs[0].value.toString(), '1', 'nothing the reader tried was applied');
});

test("Authenticate: user = a principal's name, password = its token; the token it answers works as etcd's", async () => {
  const anonymous = client();
  const answer = await anonymous.call('Auth', 'Authenticate', { name: 'reader', password: READER_TOKEN });
  assert.equal(answer.token, READER_TOKEN);
  const reader = client(answer.token);
  assert.equal((await reader.call('KV', 'Range', { key: b('app/x') })).kvs.length, 1);
  for (const wrong of [{ name: 'admin', password: READER_TOKEN }, { name: 'reader', password: 'guess' }]) {
    const err = await grpcError(anonymous.call('Auth', 'Authenticate', wrong));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.equal(err.details, 'etcdserver: authentication failed, invalid user ID or password');
  }
  const users = await grpcError(anonymous.call('Auth', 'Authenticate', { name: '', password: '' }));
  assert.equal(users.details, 'etcdserver: user name is empty');
});

test('a writer of app/ writes, deletes the prefix, and runs a txn under it through a follower (the leader judges its proposals the same way)', async () => {
  const writer = client(WRITER_TOKEN);
  await writer.call('KV', 'Put', { key: b('app/w1'), value: b('1') });
  await writer.call('KV', 'Put', { key: b('app/w2'), value: b('2') });
  const txn = await writer.call('KV', 'Txn', {
    compare: [{ key: b('app/w1'), target: 'VALUE', result: 'EQUAL', value: b('1') }],
    success: [{ request_delete_range: { key: b('app/w'), range_end: b('app/x') } }, { request_range: { key: b('app/'), range_end: b('app0') } }],
    failure: [],
  });
  assert.equal(txn.succeeded, true);
  assert.equal(txn.responses[0].response_delete_range.deleted, '2');
  const del = await writer.call('KV', 'DeleteRange', { key: b('app/'), range_end: b('app0') });
  assert.ok(Number(del.deleted) >= 1);
  const denied = await grpcError(writer.call('KV', 'DeleteRange', { key: b('ap'), range_end: b('aq') }));
  assert.equal(denied.code, status.PERMISSION_DENIED);
});
