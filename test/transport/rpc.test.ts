// The rpc stream beside the message stream: requests a follower forwards to the leader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RpcError } from '../../src/transport/index.js';
import { freePort, mesh, startNode } from './helpers.js';

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

test('a request reaches the peer’s onRequest and its answer comes back', async (t) => {
  const a = await startNode(t, 'a');
  const b = await startNode(t, 'b', { onRequest: async (from, payload) => Buffer.from(`${from} asked ${text(payload)}`) });
  mesh([a, b]);
  const answers = await Promise.all([1, 2, 3].map((i) => a.transport.request('b', Buffer.from(`q${i}`), 2000)));
  assert.deepEqual(answers.map(text), ['a asked q1', 'a asked q2', 'a asked q3']);
});

test('a handler that fails answers with an RpcError carrying its message', async (t) => {
  const a = await startNode(t, 'a');
  const b = await startNode(t, 'b', { onRequest: async () => { throw new Error('not the leader'); } });
  mesh([a, b]);
  await assert.rejects(a.transport.request('b', Buffer.from('x'), 2000), (err: unknown) => err instanceof RpcError && /not the leader/.test(err.message) && err.maybeDelivered);
});

test('a request to a peer that is down fails as never delivered; one past its deadline as maybe delivered', async (t) => {
  const a = await startNode(t, 'a', { dialTimeoutMs: 300 });
  a.transport.addPeer('ghost', { host: '127.0.0.1', port: await freePort() });
  await assert.rejects(a.transport.request('ghost', Buffer.from('x'), 2000), (err: unknown) => err instanceof RpcError && !err.maybeDelivered);
  const b = await startNode(t, 'b', { onRequest: () => new Promise<Uint8Array>(() => {}) });
  mesh([a, b]);
  await assert.rejects(a.transport.request('b', Buffer.from('x'), 200), (err: unknown) => err instanceof RpcError && err.maybeDelivered && /did not answer/.test(err.message));
  await assert.rejects(a.transport.request('nobody', Buffer.from('x'), 200), (err: unknown) => err instanceof RpcError && !err.maybeDelivered);
});
