// A held lease's close() against a scripted node that never answers keep-alives: close() used to
// wait for the renewal in flight, up to the lease's TTL; it now aborts it and revokes at once.
// The abort is the request's AbortSignal (RequestSpec.signal), also checked on its own here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortedError, RaftKvClient } from '../../src/client/index.js';
import { startFakeNode, withNodes, type Reply } from './fake-node.js';

const ok = (json: unknown): Reply => ({ status: 200, json });

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('lease().close() returns promptly with a keep-alive in flight: the renewal is aborted and the lease revoked', () =>
  withNodes(
    [
      startFakeNode('n1', (req) => {
        if (req.method === 'POST' && req.url === '/v1/leases') return ok({ id: 5, ttlSeconds: 20 });
        if (req.method === 'POST' && req.url === '/v1/leases/5/keepalive') return 'hang';
        if (req.method === 'DELETE' && req.url === '/v1/leases/5') return ok({ revision: 9, deleted: 0 });
        return { status: 404, json: { error: { code: 'NOT_FOUND', message: req.url } } };
      }),
    ],
    async ([node]) => {
      node!.leader = node!.url;
      const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 30_000, attemptTimeoutMs: 30_000 });
      // 20 renewals per TTL: the first leaves after 1 s, and would wait up to the TTL (20 s) for an answer.
      const lease = await client.lease(20, { renewalsPerTtl: 20 });
      await until(() => node!.requests.some((r) => r.url === '/v1/leases/5/keepalive'), 5000, 'the first keep-alive');
      const started = Date.now();
      await lease.close();
      const took = Date.now() - started;
      assert.ok(took < 1000, `close() took ${took} ms`);
      const last = node!.requests.at(-1)!;
      assert.deepEqual([last.method, last.url], ['DELETE', '/v1/leases/5'], 'and the lease was revoked');
      assert.equal(node!.requests.filter((r) => r.url === '/v1/leases/5/keepalive').length, 1, 'no renewal after close');
    },
  ));

test('a request abandoned by its AbortSignal ends at once with AbortedError, retrying nowhere', () =>
  withNodes([startFakeNode('n1', () => 'hang'), startFakeNode('n2', () => 'hang')], async (nodes) => {
    const client = new RaftKvClient({ endpoints: nodes.map((n) => n.url), timeoutMs: 20_000, attemptTimeoutMs: 10_000 });
    const controller = new AbortController();
    const pending = client.keepAliveLease(7, { signal: controller.signal });
    await until(() => nodes[0]!.requests.length + nodes[1]!.requests.length === 1, 5000, 'the request');
    const started = Date.now();
    controller.abort();
    await assert.rejects(pending, (err: unknown) => err instanceof AbortedError && err.code === 'ABORTED');
    assert.ok(Date.now() - started < 500);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(nodes[0]!.requests.length + nodes[1]!.requests.length, 1, 'no other node was tried');
    // Aborted before it starts: nothing is sent.
    await assert.rejects(client.keepAliveLease(7, { signal: AbortSignal.abort() }), AbortedError);
    assert.equal(nodes[0]!.requests.length + nodes[1]!.requests.length, 1);
  }));
