// The etcd API's caps on what waits on a node, on real nodes: Lock and Campaign calls waiting in
// line (together at most --max-watchers, each past it "etcdserver: too many requests" at once,
// with nothing written), election Observe streams (the same cap), and watches on one Watch stream
// (1,000, as etcd; past it created and canceled with the reason, while another stream still
// creates). Each cap frees as the calls end, and the node goes on serving.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { TestCluster } from '../cluster/harness.js';
import { b, EtcdTestClient, grpcError } from './etcd-client.js';
import { DEFAULT_ETCD_LIMITS } from '../../src/etcd/server.js';

const clusters: TestCluster[] = [];
const clients: EtcdTestClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const cluster of clusters) await cluster.destroy();
});

async function start(name: string, maxWatchers: number): Promise<EtcdTestClient> {
  const cluster = await TestCluster.start({ size: 1, name, etcdApi: true, extraArgs: ['--max-watchers', String(maxWatchers)] });
  clusters.push(cluster);
  const c = new EtcdTestClient(cluster.nodes[0]!.etcdAddr!);
  clients.push(c);
  return c;
}

test('Lock and Campaign calls waiting past --max-watchers are refused at once ("too many requests"), writing nothing; the cap frees as they end', async () => {
  const CAP = 8;
  const c = await start('etcd-wait-cap', CAP);
  const lease = async (): Promise<string> => String((await c.call('Lease', 'LeaseGrant', { TTL: 60 })).ID);
  const holder = await lease();
  await c.call('Lock', 'Lock', { name: b('job'), lease: holder });
  // CAP calls wait in line (until their 3 s deadline).
  const waiting: Promise<ServiceError>[] = [];
  const started = Date.now();
  for (let i = 0; i < CAP; i++) waiting.push(grpcError(c.call('Lock', 'Lock', { name: b('job'), lease: await lease() }, 3000)));
  await new Promise((r) => setTimeout(r, 300));
  const line = async (): Promise<number> => Number((await c.call('KV', 'Range', { key: b('job/'), range_end: b('job0'), count_only: true })).count);
  assert.equal(await line(), CAP + 1);
  const over = await grpcError(c.call('Lock', 'Lock', { name: b('job'), lease: await lease() }, 3000));
  assert.deepEqual([over.code, over.details], [status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests']);
  const campaign = await grpcError(c.call('Election', 'Campaign', { name: b('e'), lease: await lease(), value: b('v') }, 3000));
  assert.deepEqual([campaign.code, campaign.details], [status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'], 'Campaign counts against the same cap');
  assert.equal(await line(), CAP + 1, 'the refused calls wrote no key');
  assert.ok(Date.now() - started < 2500, 'refused at once, not after waiting');
  for (const err of await Promise.all(waiting)) assert.equal(err.code, status.DEADLINE_EXCEEDED);
  // The waits ended (their keys withdrawn): another may wait again.
  const again = await grpcError(c.call('Lock', 'Lock', { name: b('job'), lease: await lease() }, 500));
  assert.equal(again.code, status.DEADLINE_EXCEEDED, 'it waited, it was not refused');
  const until = Date.now() + 5000;
  while ((await line()) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await line(), 1, 'only the holder is left in line');
});

test('election Observe streams past --max-watchers are refused; closing one frees its place', async () => {
  const CAP = 8;
  const c = clients[0] ?? (await start('etcd-observe-cap', CAP));
  const streams = Array.from({ length: CAP }, () => c.serverStream('Election', 'Observe', { name: b('obs') }));
  for (const s of streams) s.on('error', () => undefined);
  await new Promise((r) => setTimeout(r, 300));
  const over = c.serverStream('Election', 'Observe', { name: b('obs') });
  const refused = await new Promise<ServiceError>((resolve, reject) => {
    over.on('error', resolve);
    over.on('data', () => reject(new Error('an observer past the cap was served')));
    setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
  });
  assert.deepEqual([refused.code, refused.details], [status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests']);
  streams[0]!.cancel();
  await new Promise((r) => setTimeout(r, 300));
  // A place is free: a new observer hears the leader once there is one.
  const lease = String((await c.call('Lease', 'LeaseGrant', { TTL: 60 })).ID);
  const next = c.serverStream('Election', 'Observe', { name: b('obs') });
  const heard = new Promise<string>((resolve, reject) => {
    next.on('data', (m: { kv: { value: Buffer } }) => resolve(m.kv.value.toString()));
    next.on('error', reject);
    setTimeout(() => reject(new Error('the observer heard nothing within 5 s')), 5000);
  });
  await c.call('Election', 'Campaign', { name: b('obs'), lease, value: b('me') });
  assert.equal(await heard, 'me');
  for (const s of [...streams, next]) s.cancel();
});

test('watches on one Watch stream are capped at 1,000 (created and canceled with the reason); another stream still creates', async () => {
  const PER_STREAM = DEFAULT_ETCD_LIMITS.maxWatchesPerStream;
  const c = await start('etcd-per-stream', PER_STREAM + 100);
  const stream = c.stream('Watch', 'Watch');
  const answers: { created: boolean; canceled: boolean; cancel_reason: string }[] = [];
  stream.on('data', (m: { created: boolean; canceled: boolean; cancel_reason: string }) => answers.push(m));
  stream.on('error', () => undefined);
  for (let i = 0; i < PER_STREAM + 5; i++) stream.write({ create_request: { key: b(`w/${i}`) } });
  const until = Date.now() + 10_000;
  while (answers.length < PER_STREAM + 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(answers.filter((a) => a.created && !a.canceled).length, PER_STREAM);
  const refused = answers.filter((a) => a.canceled);
  assert.equal(refused.length, 5);
  assert.ok(refused.every((a) => a.cancel_reason === 'etcdserver: too many requests'));
  const other = c.stream('Watch', 'Watch');
  const created = new Promise<{ created: boolean; canceled: boolean }>((resolve, reject) => {
    other.on('data', resolve);
    other.on('error', reject);
    setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
  });
  other.write({ create_request: { key: b('w/other') } });
  const m = await created;
  assert.deepEqual([m.created, m.canceled], [true, false], 'the cap is per stream, not the node\'s');
  stream.cancel();
  other.cancel();
  const put = await c.call('KV', 'Put', { key: b('alive'), value: b('1') });
  assert.ok(Number(put.header.revision) > 1);
});
