// The client's raftkv-mux transport (src/client/mux-transport.ts, docs/mux.md) against scripted
// nodes on real sockets: clients of one process share one connection per node; a node that
// refuses the upgrade gets HTTP/1.1; one client's close() spares the others' requests; a
// connection that answers nothing is dropped so the next attempt dials again. And the frame
// codec (src/client/mux-frames.ts): round trips, and any bytes at all are either frames or
// MuxProtocolError, never another throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RaftKvClient } from '../../src/client/index.js';
import { decodeMuxAnswer, decodeMuxRequest, encodeMuxAnswer, encodeMuxRequest, MuxFrameReader, MuxProtocolError } from '../../src/client/mux-frames.js';
import { kvScript, startFakeNode, withNodes } from './fake-node.js';

test('raftkv-mux: 24 clients of one process share one connection to a node, all in flight at once', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    const clients = Array.from({ length: 24 }, () => new RaftKvClient({ endpoints: [node!.url] }));
    try {
      await Promise.all(clients.map((c, i) => c.put(`k${i}`, `v${i}`)));
      const read = await Promise.all(clients.map((c, i) => c.getString(`k${i}`)));
      assert.deepEqual(read, clients.map((_, i) => `v${i}`));
      assert.equal(node!.connections, 1, 'one TCP connection for 24 clients and 48 requests');
      assert.equal(node!.requests.length, 48);
    } finally {
      for (const c of clients) c.close();
    }
  }));

test('raftkv-mux: a node that refuses the upgrade (one from before it) is spoken to over HTTP/1.1, nothing lost', () =>
  withNodes([startFakeNode('n1', kvScript(), { mux: false })], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url] });
    try {
      await client.put('a', 'x');
      assert.equal(await client.getString('a'), 'x');
      // Only the two requests reached the script: the refused upgrade is not one of them.
      assert.deepEqual(node!.requests.map((r) => `${r.method} ${r.url}`), ['PUT /v1/kv/a', 'GET /v1/kv/a']);
    } finally {
      client.close();
    }
  }));

test('raftkv-mux: multiplex false keeps HTTP/1.1, one connection per request in flight', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    const clients = Array.from({ length: 4 }, () => new RaftKvClient({ endpoints: [node!.url], multiplex: false }));
    try {
      await Promise.all(clients.map((c, i) => c.put(`k${i}`, 'v')));
      assert.equal(node!.connections, 4);
    } finally {
      for (const c of clients) c.close();
    }
  }));

test('raftkv-mux: closing one client fails its own requests in flight, not another client\'s on the same connection', () =>
  withNodes(
    [
      startFakeNode('n1', async (req) => {
        // Every answer takes 300 ms: both requests are in flight when the first client closes.
        await new Promise((r) => setTimeout(r, 300));
        return { status: 200, json: { index: 1, revision: 2, key: req.url } };
      }),
    ],
    async ([node]) => {
      const a = new RaftKvClient({ endpoints: [node!.url], retries: 0 });
      const b = new RaftKvClient({ endpoints: [node!.url], retries: 0 });
      try {
        const fromA = a.put('a', 'x').then(
          () => 'answered',
          (err: Error) => err.name,
        );
        const fromB = b.put('b', 'y');
        await new Promise((r) => setTimeout(r, 100));
        a.close();
        assert.notEqual(await fromA, 'answered', "a's write failed with its client");
        assert.deepEqual(await fromB, { index: 1, revision: 2 }, "b's write on the same connection was answered");
        assert.equal(node!.connections, 1);
      } finally {
        a.close();
        b.close();
      }
    },
  ));

test('raftkv-mux: an attempt that times out on a connection that answered nothing drops it; the next attempt dials a new one', () => {
  let n = 0;
  return withNodes(
    [startFakeNode('n1', () => (++n === 1 ? 'hang' : { status: 200, json: { index: 2, revision: 3 } }))],
    async ([node]) => {
      const client = new RaftKvClient({ endpoints: [node!.url], attemptTimeoutMs: 300, timeoutMs: 3000 });
      try {
        // A read: the first attempt hangs, the retry goes on a fresh connection and is answered.
        const started = Date.now();
        await client.status().catch(() => undefined);
        assert.ok(Date.now() - started < 2500);
        assert.equal(node!.requests.length, 2, 'retried once');
        assert.equal(node!.connections, 2, 'the silent connection was dropped and a new one dialed');
      } finally {
        client.close();
      }
    },
  );
});

test('raftkv-mux: a caller abandoning its request leaves the shared connection, and another client\'s request on it, alone', () =>
  withNodes(
    [
      startFakeNode('n1', async (req) => {
        // The renewal is never answered; the write is, after 400 ms.
        if (req.url.includes('keepalive')) return 'hang';
        await new Promise((r) => setTimeout(r, 400));
        return { status: 200, json: { index: 4, revision: 5 } };
      }),
    ],
    async ([node]) => {
      const a = new RaftKvClient({ endpoints: [node!.url], retries: 0 });
      const b = new RaftKvClient({ endpoints: [node!.url], retries: 0 });
      try {
        const controller = new AbortController();
        const renewal = a.keepAliveLease(7, { signal: controller.signal }).then(
          () => 'answered',
          (err: Error) => err.name,
        );
        await new Promise((r) => setTimeout(r, 50));
        const write = b.put('k', 'v');
        await new Promise((r) => setTimeout(r, 100));
        controller.abort();
        assert.equal(await renewal, 'AbortedError');
        assert.deepEqual(await write, { index: 4, revision: 5 }, "the other client's write on the same connection is answered");
        assert.equal(node!.connections, 1, 'no connection was dropped or dialed again');
      } finally {
        a.close();
        b.close();
      }
    },
  ));

test('mux frames: requests and answers round-trip; a stream of them split anywhere is read back whole', () => {
  const name = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
  const value = fc.stringMatching(/^[\t\x20-\x7e]{0,40}$/);
  const headers = fc.dictionary(name, value, { maxKeys: 6 });
  const request = fc.record({
    id: fc.integer({ min: 0, max: 0xffffffff }),
    method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'HEAD'),
    path: fc.stringMatching(/^\/[\x21-\x7e]{0,60}$/),
    headers,
    body: fc.uint8Array({ maxLength: 300 }),
  });
  fc.assert(
    fc.property(fc.array(request, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (reqs, cuts) => {
      const bytes = Buffer.concat(reqs.map((r) => encodeMuxRequest(r.id, r.method, r.path, r.headers, r.body)));
      const seen: ReturnType<typeof decodeMuxRequest>[] = [];
      const reader = new MuxFrameReader(1 << 20, (f) => seen.push(decodeMuxRequest(f)));
      let at = 0;
      for (let i = 0; at < bytes.length; i++) {
        const n = cuts[i % cuts.length]!;
        reader.push(bytes.subarray(at, at + n));
        at += n;
      }
      assert.equal(reader.pendingBytes, 0);
      assert.deepEqual(
        seen.map((r) => ({ id: r.id, method: r.method, path: r.path, headers: { ...r.headers }, body: Array.from(r.body) })),
        reqs.map((r) => ({ id: r.id, method: r.method, path: r.path, headers: { ...r.headers }, body: Array.from(r.body) })),
      );
      const answer = decodeMuxAnswer(encodeMuxAnswer(reqs[0]!.id, 200, reqs[0]!.headers, reqs[0]!.body).subarray(4));
      assert.deepEqual({ id: answer.id, status: answer.status, headers: { ...answer.headers }, body: Array.from(answer.body) }, { id: reqs[0]!.id, status: 200, headers: { ...reqs[0]!.headers }, body: Array.from(reqs[0]!.body) });
    }),
    { numRuns: 300 },
  );
});

test('mux frames: arbitrary bytes are frames or a MuxProtocolError, never another error; a frame over the limit is refused before it is buffered', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (bytes) => {
      const reader = new MuxFrameReader(256, (f) => {
        decodeMuxRequest(f);
      });
      try {
        reader.push(Buffer.from(bytes));
      } catch (err) {
        assert.ok(err instanceof MuxProtocolError, `${String(err)}`);
      }
      try {
        decodeMuxAnswer(Buffer.from(bytes));
      } catch (err) {
        assert.ok(err instanceof MuxProtocolError, `${String(err)}`);
      }
    }),
    { numRuns: 2000 },
  );
  const reader = new MuxFrameReader(1024, () => assert.fail('no frame'));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(1025, 0);
  assert.throws(() => reader.push(head), MuxProtocolError);
  assert.throws(() => encodeMuxRequest(1, 'GET', '/a b', {}, undefined), TypeError, 'a space in the path is never sent');
  assert.throws(() => encodeMuxRequest(1, 'GET', '/a', { 'x-a': 'line\nfeed' }, undefined), TypeError, 'nor a line feed in a header');
  assert.throws(() => encodeMuxRequest(1, 'PATCH', '/a', {}, undefined), TypeError);
});
