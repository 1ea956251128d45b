// etcd DeleteRange and Txn with prev_kv on a real node: the previous values are counted against
// --max-response-bytes before they are copied, and an answer past it is refused as an oversized
// Range is (RESOURCE_EXHAUSTED naming the flag), not built whole and then dropped by gRPC's send
// limit. The delete itself has committed (etcd's too: the answer, not the write, is what fails).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { TestCluster } from '../cluster/harness.js';
import { b, EtcdTestClient, grpcError } from './etcd-client.js';

const MAX_RESPONSE = 256 << 10;
const VALUE = 60_000;
let cluster: TestCluster;
let c: EtcdTestClient;

before(async () => {
  cluster = await TestCluster.start({ size: 1, name: 'etcd-prev-kv', etcdApi: true, extraArgs: ['--max-value-bytes', String(64 << 10), '--max-response-bytes', String(MAX_RESPONSE)] });
  c = new EtcdTestClient(cluster.nodes[0]!.etcdAddr!);
});
after(async () => {
  c?.close();
  await cluster?.destroy();
});

async function fill(prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await c.call('KV', 'Put', { key: b(`${prefix}${i}`), value: Buffer.alloc(VALUE, 97 + i) });
}
const count = async (prefix: string): Promise<number> => Number((await c.call('KV', 'Range', { key: b(prefix), range_end: b(`${prefix.slice(0, -1)}0`), count_only: true })).count);

test('DeleteRange prev_kv past --max-response-bytes is refused as an oversized Range is; under it, every previous value comes back', async () => {
  await fill('big/', 8); // 8 x 60 KB: past the 256 KiB limit
  const range = await grpcError(c.call('KV', 'Range', { key: b('big/'), range_end: b('big0') }));
  assert.equal(range.code, status.RESOURCE_EXHAUSTED);
  const del = await grpcError(c.call('KV', 'DeleteRange', { key: b('big/'), range_end: b('big0'), prev_kv: true }));
  assert.equal(del.code, status.RESOURCE_EXHAUSTED);
  assert.match(del.details, /prev_kv.*--max-response-bytes \(262144\)/, `refused by the node's own bound, not by the send limit: ${del.details}`);
  assert.equal(await count('big/'), 0, 'the delete committed; only its answer was refused');

  await fill('small/', 3);
  const ok = await c.call('KV', 'DeleteRange', { key: b('small/'), range_end: b('small0'), prev_kv: true });
  assert.equal(Number(ok.deleted), 3);
  assert.deepEqual(ok.prev_kvs.map((kv: { key: Buffer; value: Buffer }) => [kv.key.toString(), kv.value.length]), [['small/0', VALUE], ['small/1', VALUE], ['small/2', VALUE]]);
});

test('a Txn counts every part of its answer against one limit: two prev_kv deletes that fit alone do not fit together', async () => {
  await fill('t1/', 3);
  await fill('t2/', 3);
  const both = await grpcError(
    c.call('KV', 'Txn', {
      compare: [],
      success: [{ request_delete_range: { key: b('t1/'), range_end: b('t10'), prev_kv: true } }, { request_delete_range: { key: b('t2/'), range_end: b('t20'), prev_kv: true } }],
      failure: [],
    }),
  );
  assert.equal(both.code, status.RESOURCE_EXHAUSTED);
  assert.match(both.details, /--max-response-bytes \(262144\)/, both.details);
  assert.deepEqual([await count('t1/'), await count('t2/')], [0, 0], 'the transaction applied; its answer was refused');

  // A range already in the answer leaves less room for the previous values after it.
  await fill('t3/', 2);
  await fill('t4/', 2);
  const mixed = await grpcError(
    c.call('KV', 'Txn', {
      compare: [],
      success: [{ request_range: { key: b('t3/'), range_end: b('t30') } }, { request_delete_range: { key: b('t4/'), range_end: b('t40'), prev_kv: true } }, { request_range: { key: b('t3/'), range_end: b('t30') } }],
      failure: [],
    }),
  );
  assert.equal(mixed.code, status.RESOURCE_EXHAUSTED, 'two ranges of 120 KB and 120 KB of previous values pass 256 KiB together');

  await fill('t5/', 2);
  const fits = await c.call('KV', 'Txn', { compare: [], success: [{ request_delete_range: { key: b('t5/'), range_end: b('t50'), prev_kv: true } }], failure: [] });
  assert.equal(fits.responses[0].response_delete_range.prev_kvs.length, 2);
  const alive = await c.call('KV', 'Put', { key: b('alive'), value: b('1') });
  assert.ok(Number(alive.header.revision) > 1, 'the node still takes writes');
});
