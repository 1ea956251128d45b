// Hostile input on the etcd v3 gRPC port of a real node: oversized messages, bytes that are not
// protobuf, unknown methods, keys that are not UTF-8, ids past 2^53, too many transaction ops,
// more watches than --max-watchers on one stream, a keep-alive flood, and stream churn. Each is
// answered with a clear gRPC status, nothing is applied, nothing leaks (the watcher gauge returns
// to zero), and the node goes on answering.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { TestCluster, type TestNode } from '../cluster/harness.js';
import { http } from '../cluster/http.js';
import { parseMetrics } from '../../src/harness/index.js';
import { b, EtcdTestClient, grpcError } from './etcd-client.js';

let cluster: TestCluster;
let node: TestNode;
let c: EtcdTestClient;
const MAX_WATCHERS = 20;
const MAX_CONNECTIONS = 24;

before(async () => {
  cluster = await TestCluster.start({ size: 1, name: 'etcd-abuse', etcdApi: true, extraArgs: ['--max-watchers', String(MAX_WATCHERS), '--quota-bytes', String(4 << 20), '--max-client-connections', String(MAX_CONNECTIONS)] });
  node = cluster.nodes[0]!;
  c = new EtcdTestClient(node.etcdAddr!);
});
after(async () => {
  c?.close();
  await cluster?.destroy();
});

async function watchers(): Promise<number> {
  const reply = await http(node.url, '/metrics');
  return parseMetrics(reply.text).get('raftkv_watchers') ?? -1;
}

async function stillServes(): Promise<void> {
  const put = await c.call('KV', 'Put', { key: b('alive'), value: b(String(Date.now())) }, 5000);
  assert.ok(Number(put.header.revision) > 1, 'the node still takes writes');
}

/** A raw call: `bytes` sent as the request message, whatever they are. */
function raw(path: string, bytes: Buffer): Promise<ServiceError | null> {
  const client = new Client(node.etcdAddr!, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (x: Buffer) => x, (x: Buffer) => x, bytes, { deadline: Date.now() + 5000 }, (err) => {
      client.close();
      resolve(err);
    });
  });
}

test('a request past the message limit is refused (RESOURCE_EXHAUSTED), a value past --max-value-bytes is "request is too large"', async () => {
  const huge = await grpcError(c.call('KV', 'Put', { key: b('big'), value: Buffer.alloc(3 * 1024 * 1024, 1) }));
  assert.equal(huge.code, status.RESOURCE_EXHAUSTED);
  const big = await grpcError(c.call('KV', 'Put', { key: b('big'), value: Buffer.alloc(1024 * 1024 + 1, 1) }));
  assert.equal(big.code, status.INVALID_ARGUMENT);
  assert.equal(big.details, 'etcdserver: request is too large');
  assert.equal((await c.call('KV', 'Range', { key: b('big') })).kvs.length, 0, 'nothing was written');
  await stillServes();
});

test('bytes that are not protobuf, and unknown methods, get an error status; the node is unharmed', async () => {
  const garbage = await raw('/etcdserverpb.KV/Put', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0xff]));
  assert.ok(garbage !== null && garbage.code !== status.OK, 'garbage is refused');
  const truncated = await raw('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x10, 0x61]));
  assert.ok(truncated !== null, 'a truncated message is refused');
  const unknown = await raw('/etcdserverpb.Auth/UserAdd', Buffer.alloc(0));
  assert.equal(unknown?.code, status.UNIMPLEMENTED);
  const noAuth = await raw('/etcdserverpb.Auth/Authenticate', Buffer.alloc(0));
  assert.equal(noAuth?.code, status.FAILED_PRECONDITION, 'without --auth-file: authentication is not enabled');
  const defrag = await raw('/etcdserverpb.Maintenance/Defragment', Buffer.alloc(0));
  assert.equal(defrag?.code, status.UNIMPLEMENTED);
  await stillServes();
});

test('a key that is not UTF-8, an id past 2^53, a bad enum and too many txn ops are INVALID_ARGUMENT', async () => {
  const notUtf8 = await grpcError(c.call('KV', 'Put', { key: Buffer.from([0x61, 0xff, 0xfe]), value: b('v') }));
  assert.equal(notUtf8.code, status.INVALID_ARGUMENT);
  const bigId = await grpcError(c.call('KV', 'Put', { key: b('k'), value: b('v'), lease: '9223372036854775807' }));
  assert.equal(bigId.code, status.INVALID_ARGUMENT);
  const ops = Array.from({ length: 200 }, (_, i) => ({ request_put: { key: b(`op/${i}`), value: b('v') } }));
  const tooMany = await grpcError(c.call('KV', 'Txn', { compare: [], success: ops, failure: [] }));
  assert.equal(tooMany.code, status.INVALID_ARGUMENT);
  assert.equal(tooMany.details, 'etcdserver: too many operations in txn request');
  const nested = await grpcError(c.call('KV', 'Txn', { compare: [], success: [{ request_txn: { compare: [], success: [], failure: [] } }], failure: [] }));
  assert.equal(nested.code, status.UNIMPLEMENTED);
  await stillServes();
});

test('watches past --max-watchers are created and canceled with a reason; closing the stream frees them all', async () => {
  const stream = c.stream('Watch', 'Watch');
  const answers: { created: boolean; canceled: boolean; cancel_reason: string }[] = [];
  stream.on('data', (m: { created: boolean; canceled: boolean; cancel_reason: string }) => answers.push(m));
  stream.on('error', () => undefined);
  for (let i = 0; i < MAX_WATCHERS + 5; i++) stream.write({ create_request: { key: b(`cap/${i}`) } });
  const until = Date.now() + 5000;
  while (answers.length < MAX_WATCHERS + 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(answers.filter((a) => a.created && !a.canceled).length, MAX_WATCHERS);
  const refused = answers.filter((a) => a.canceled);
  assert.equal(refused.length, 5);
  assert.equal(refused[0]!.cancel_reason, 'etcdserver: too many requests');
  assert.equal(await watchers(), MAX_WATCHERS);
  stream.cancel();
  const freed = Date.now() + 5000;
  while ((await watchers()) !== 0 && Date.now() < freed) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await watchers(), 0, 'a closed stream leaves no watcher behind');
  await stillServes();
});

test('stream churn: 200 streams opened with a watch each and dropped leave no watcher behind', async () => {
  for (let round = 0; round < 10; round++) {
    const streams = Array.from({ length: 20 }, () => c.stream('Watch', 'Watch'));
    await Promise.all(
      streams.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.on('data', () => resolve());
            s.on('error', () => resolve());
            s.write({ create_request: { key: b('churn'), range_end: Buffer.from([0]) } });
          }),
      ),
    );
    for (const s of streams) s.cancel();
  }
  const until = Date.now() + 5000;
  while ((await watchers()) !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await watchers(), 0);
  await stillServes();
});

test('a keep-alive flood on one stream is throttled; the node stays responsive', async () => {
  const lease = (await c.call('Lease', 'LeaseGrant', { TTL: 30 })).ID;
  const stream = c.stream('Lease', 'LeaseKeepAlive');
  let answered = 0;
  stream.on('data', () => answered++);
  stream.on('error', () => undefined);
  const started = Date.now();
  for (let i = 0; i < 20_000; i++) stream.write({ ID: lease });
  const t0 = Date.now();
  await stillServes();
  const latency = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 1000));
  const seconds = (Date.now() - started) / 1000;
  assert.ok(answered > 0, 'keep-alives are answered');
  assert.ok(answered <= 1000 * Math.ceil(seconds + 1), `at most 1000 answered a second (${answered} in ${seconds.toFixed(1)} s)`);
  assert.ok(latency < 3000, `a write during the flood took ${latency} ms`);
  stream.cancel();
  await stillServes();
});

test('connections past --max-client-connections are closed at once; once they go, the port serves again', async () => {
  const many = Array.from({ length: MAX_CONNECTIONS + 8 }, () => new Client(node.etcdAddr!, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_retries': 0 }));
  const answers = await Promise.all(
    many.map(
      (client) =>
        new Promise<boolean>((resolve) => {
          client.makeUnaryRequest('/etcdserverpb.Maintenance/Status', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 3000 }, (err) => resolve(err === null));
        }),
    ),
  );
  const served = answers.filter((ok) => ok).length;
  assert.ok(served <= MAX_CONNECTIONS, `${served} connections served, the cap is ${MAX_CONNECTIONS}`);
  assert.ok(served < many.length, 'some connections were refused');
  for (const client of many) client.close();
  await new Promise((r) => setTimeout(r, 300));
  await stillServes();
});

test('past --quota-bytes: "database space exceeded", the NOSPACE alarm in Alarm and Status; deletes and compaction make room', async () => {
  const value = Buffer.alloc(256 * 1024, 7);
  let refused: ServiceError | null = null;
  for (let i = 0; i < 40 && refused === null; i++) {
    refused = await c.call('KV', 'Put', { key: b(`fill/${i}`), value }).then(() => null, (err: ServiceError) => err);
  }
  assert.ok(refused !== null, 'the quota was reached');
  assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
  assert.equal(refused.details, 'etcdserver: mvcc: database space exceeded');
  const alarms = await c.call('Maintenance', 'Alarm', { action: 'GET' });
  assert.deepEqual(alarms.alarms.map((a: { alarm: string }) => a.alarm), ['NOSPACE']);
  const st = await c.call('Maintenance', 'Status', {});
  assert.ok(st.errors.some((e: string) => e.includes('NOSPACE')), st.errors.join());
  const del = await c.call('KV', 'DeleteRange', { key: b('fill/'), range_end: b('fill0') });
  assert.ok(Number(del.deleted) > 0);
  // The delete's own events keep the values until the history moves past them.
  const after = await c.call('KV', 'Put', { key: b('marker'), value: b('m') });
  await c.call('KV', 'Compact', { revision: after.header.revision });
  const until = Date.now() + 5000;
  while ((await c.call('Maintenance', 'Alarm', { action: 'GET' })).alarms.length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await c.call('Maintenance', 'Alarm', { action: 'GET' })).alarms, [], 'the alarm clears once there is room');
  await c.call('KV', 'Put', { key: b('fill/again'), value });
});

test('SIGTERM with a watch stream, a keep-alive stream and a waiting Lock open: the node stops cleanly (exit 0) within seconds', async () => {
  // Last: it stops the node.
  const watch = c.stream('Watch', 'Watch');
  watch.on('error', () => undefined);
  watch.write({ create_request: { key: b('bye'), range_end: Buffer.from([0]) } });
  const lease = (await c.call('Lease', 'LeaseGrant', { TTL: 60 })).ID;
  const other = (await c.call('Lease', 'LeaseGrant', { TTL: 60 })).ID;
  const ka = c.stream('Lease', 'LeaseKeepAlive');
  ka.on('error', () => undefined);
  ka.write({ ID: lease });
  await c.call('Lock', 'Lock', { name: b('bye-lock'), lease });
  const waiting = c.call('Lock', 'Lock', { name: b('bye-lock'), lease: other }, 60_000).catch((err: ServiceError) => err);
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  const exit = await node.stop('SIGTERM', 15_000);
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.ok(Date.now() - started < 8000, `stopping took ${Date.now() - started} ms`);
  const answer = await waiting;
  assert.ok(answer instanceof Error, 'the waiting Lock ends with an error, not a lock');
});
