// The client against nodes that speak TLS and check tokens (API.md "Security"), and the errors
// that retrying cannot fix: the token travels on every attempt, 401/403 and TLS failures are final
// and never tried on another node, every POST says it is JSON, and readiness comes from /readyz.
import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  BadRequestError,
  NoSpaceError,
  OutcomeUnknownError,
  PermissionDeniedError,
  RaftKvClient,
  RaftKvClientError,
  TlsError,
  TooLargeError,
  TransferFailedError,
  UnauthenticatedError,
  UnavailableError,
} from '../../src/client/index.js';
import { downNodeUrl, errorReply, kvScript, startFakeNode, withNodes, type Reply } from './fake-node.js';
import { NO_OPENSSL, testPki } from './test-pki.js';

const ok = (json: unknown): Reply => ({ status: 200, json });
const TOKEN = 'tok-3xZ_9.abc~';

test('the bearer token goes with every attempt: retries, other nodes, status and readiness', () =>
  withNodes(
    [startFakeNode('n1', (_r, n) => (n === 1 ? errorReply(503, 'NO_LEADER') : errorReply(504, 'TIMEOUT'))), startFakeNode('n2', () => ok({ index: 4, revision: 4 }))],
    async ([a, b]) => {
      const client = new RaftKvClient({ endpoints: [a!.url, b!.url], token: TOKEN, timeoutMs: 3000, backoffMs: 5 });
      assert.deepEqual(await client.put('k', 'v'), { index: 4, revision: 4 });
      await client.statusOfAll();
      await client.readyOfAll();
      const all = [...a!.requests, ...b!.requests];
      assert.ok(all.length >= 6, `only ${all.length} requests`);
      for (const r of all) assert.equal(r.headers.authorization, `Bearer ${TOKEN}`, `${r.method} ${r.url}`);
    },
  ));

test('no token or a wrong one: UnauthenticatedError at once, no other node tried, a write not "outcome unknown"', () =>
  withNodes([startFakeNode('n1', () => ok({ index: 1, revision: 1 }), { token: TOKEN }), startFakeNode('n2', () => ok({ index: 1, revision: 1 }))], async ([guarded, other]) => {
    for (const token of [undefined, 'wrong-token']) {
      const client = new RaftKvClient({ endpoints: [guarded!.url, other!.url], timeoutMs: 3000, ...(token !== undefined ? { token } : {}) });
      await assert.rejects(client.put('k', 'v'), (err: unknown) => {
        assert.ok(err instanceof UnauthenticatedError, String(err));
        assert.ok(!(err instanceof OutcomeUnknownError));
        assert.equal(err.code, 'UNAUTHENTICATED');
        assert.equal(err.status, 401);
        if (token !== undefined) assert.ok(!err.message.includes(token), 'an error message must not carry the token');
        return true;
      });
    }
    assert.equal(guarded!.requests.length, 2);
    assert.equal(other!.requests.length, 0, 'a 401 is never retried on another node');
    const good = new RaftKvClient({ endpoints: [guarded!.url], token: TOKEN, timeoutMs: 3000 });
    assert.deepEqual(await good.put('k', 'v'), { index: 1, revision: 1 });
  }));

test('403 PERMISSION_DENIED: PermissionDeniedError at once, no other node tried', () =>
  withNodes([startFakeNode('n1', () => errorReply(403, 'PERMISSION_DENIED')), startFakeNode('n2', () => ok({ index: 1, revision: 1 }))], async ([a, b]) => {
    const client = new RaftKvClient({ endpoints: [a!.url, b!.url], token: TOKEN, timeoutMs: 3000 });
    await assert.rejects(client.removeMember('n3'), (err: unknown) => err instanceof PermissionDeniedError && err.code === 'PERMISSION_DENIED' && err.status === 403);
    assert.deepEqual([a!.requests.length, b!.requests.length], [1, 0]);
  }));

const FINAL: [number, string, new (...a: never[]) => RaftKvClientError][] = [
  [507, 'NO_SPACE', NoSpaceError],
  [413, 'REPLY_TOO_LARGE', TooLargeError],
  [415, 'UNSUPPORTED_MEDIA_TYPE', BadRequestError],
  [400, 'BAD_MEMBER_ID', BadRequestError],
  [409, 'TRANSFER_FAILED', TransferFailedError],
  // By code, whatever the status: a 503 TRANSFER_FAILED is not retried as an unavailable cluster.
  [503, 'TRANSFER_FAILED', TransferFailedError],
  [503, 'UNAUTHENTICATED', UnauthenticatedError],
];
for (const [status, code, Class] of FINAL) {
  test(`a ${status} ${code} is raised as ${Class.name} at once, without retrying`, () =>
    withNodes([startFakeNode('n1', () => errorReply(status, code)), startFakeNode('n2', () => ok({ leader: 'n2' }))], async ([a, b]) => {
      const client = new RaftKvClient({ endpoints: [a!.url, b!.url], timeoutMs: 3000 });
      await assert.rejects(client.transferLeader('n2'), (err: unknown) => {
        assert.ok(err instanceof Class, String(err));
        assert.deepEqual([err.code, err.status], [code, status]);
        return true;
      });
      assert.deepEqual([a!.requests.length, b!.requests.length], [1, 0]);
    }));
}

test('every POST says Content-Type: application/json, even one without a body', () =>
  withNodes(
    [
      startFakeNode('n1', (r) => {
        const path = new URL(r.url, 'http://x').pathname;
        if (path === '/v1/txn') return ok({ succeeded: true, index: 2, revision: 2, responses: [] });
        if (path === '/v1/leader/transfer') return ok({ leader: 'n2' });
        return ok({});
      }),
    ],
    async ([node]) => {
      const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 3000 });
      await client.txn({ compare: [], success: [], failure: [] });
      await client.addMember({ id: 'n4', peerAddr: '127.0.0.1:8004', clientAddr: '127.0.0.1:7004' });
      await client.promoteMember('n4');
      await client.transferLeader();
      await client.transferLeader('n2');
      const posts = node!.requests.filter((r) => r.method === 'POST');
      assert.equal(posts.length, 5);
      for (const r of posts) {
        assert.equal(r.headers['content-type'], 'application/json', r.url);
        assert.doesNotThrow(() => JSON.parse(r.body.toString()), `${r.url}: the body must be JSON`);
      }
    },
  ));

test('bad security options are refused at construction, naming the option', { skip: NO_OPENSSL }, () => {
  const endpoints = ['https://127.0.0.1:1'];
  assert.throws(() => new RaftKvClient({ endpoints, token: 'two words' }), /token/);
  assert.throws(() => new RaftKvClient({ endpoints, token: 'abc\r\nX-Evil: 1' }), /token/);
  assert.throws(() => new RaftKvClient({ endpoints, token: 'abc\nxyz' }), /token/);
  assert.throws(() => new RaftKvClient({ endpoints, token: '' }), /token/);
  assert.throws(() => new RaftKvClient({ endpoints, ca: 'not a certificate' }), /the ca option/);
  // DER is a certificate too, but TLS would ignore it without a word and trust nothing.
  assert.throws(() => new RaftKvClient({ endpoints, ca: new X509Certificate(testPki().ca).raw }), /the ca option/);
  assert.throws(() => new RaftKvClient({ endpoints, cert: testPki().client.cert, key: testPki().node.key }), /the cert option/);
  assert.throws(() => new RaftKvClient({ endpoints, cert: 'x' }), /cert and key/);
  assert.throws(() => new RaftKvClient({ endpoints, fetch: globalThis.fetch, ca: 'x' }), /custom fetch/);
});

test('https with the CA: requests go through, over one kept-alive connection', { skip: NO_OPENSSL }, async () => {
  const pki = testPki();
  await withNodes([startFakeNode('n1', kvScript(), { tls: pki.node, token: TOKEN })], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], ca: pki.ca, token: TOKEN, timeoutMs: 3000 });
    assert.match(node!.url, /^https:/);
    await client.put('k', 'over tls');
    assert.equal(await client.getString('k'), 'over tls');
    await client.put('k', 'again');
    assert.equal(node!.requests.length, 3);
    assert.equal(node!.connections, 1, 'keep-alive: one TLS handshake for every request');
    client.close();
  });
});

test('https without the right CA fails at once with a TlsError that says what to give, trying no other node', { skip: NO_OPENSSL }, async () => {
  const pki = testPki();
  await withNodes([startFakeNode('n1', () => ok({ index: 1, revision: 1 }), { tls: pki.node }), startFakeNode('n2', () => ok({ index: 1, revision: 1 }))], async ([secure, other]) => {
    for (const ca of [undefined, pki.otherCa]) {
      const client = new RaftKvClient({ endpoints: [secure!.url, other!.url], timeoutMs: 3000, ...(ca !== undefined ? { ca } : {}) });
      const started = Date.now();
      await assert.rejects(client.put('k', 'v'), (err: unknown) => {
        assert.ok(err instanceof TlsError, String(err));
        assert.ok(!(err instanceof OutcomeUnknownError));
        assert.equal(err.code, 'TLS_FAILED');
        assert.equal(err.failure, 'untrusted-certificate');
        assert.equal(err.endpoint, secure!.url);
        assert.match(err.message, /certificate is not trusted .*the ca option/);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms: a TLS failure is not retried`);
    }
    assert.equal(secure!.requests.length, 0, 'no request got past the handshake');
    assert.equal(other!.requests.length, 0);
  });
});

test('a node that wants client certificates: with cert and key it sees ours; without, a TlsError and nothing applied', { skip: NO_OPENSSL }, async () => {
  const pki = testPki();
  await withNodes([startFakeNode('n1', () => ok({ index: 9, revision: 9 }), { tls: { ...pki.node, ca: pki.ca, requireClientCert: true } })], async ([node]) => {
    const withCert = new RaftKvClient({ endpoints: [node!.url], ca: pki.ca, cert: pki.client.cert, key: pki.client.key, timeoutMs: 3000 });
    assert.deepEqual(await withCert.put('k', 'v'), { index: 9, revision: 9 });
    assert.equal(node!.requests[0]!.clientCertName, 'raftkv-cli');
    withCert.close();
    const without = new RaftKvClient({ endpoints: [node!.url], ca: pki.ca, timeoutMs: 3000 });
    await assert.rejects(without.put('k', 'v'), (err: unknown) => {
      assert.ok(err instanceof TlsError, String(err));
      assert.equal(err.failure, 'certificate-refused');
      assert.match(err.message, /client certificate/);
      return true;
    });
    assert.equal(node!.requests.length, 1);
  });
});

test('an https:// endpoint that speaks plain HTTP: a TlsError saying so', { skip: NO_OPENSSL }, () =>
  withNodes([startFakeNode('n1', () => ok({ index: 1, revision: 1 }))], async ([plain]) => {
    const client = new RaftKvClient({ endpoints: [plain!.url.replace('http:', 'https:')], timeoutMs: 3000 });
    await assert.rejects(client.get('k'), (err: unknown) => err instanceof TlsError && err.failure === 'not-tls' && /does not speak TLS/.test(err.message));
  }));

test('a write whose connection never got ready (TLS handshake unanswered) is unavailable, not outcome-unknown', async () => {
  const sockets: Socket[] = [];
  const silent: NetServer = createNetServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const url = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const client = new RaftKvClient({ endpoints: [url], timeoutMs: 700, attemptTimeoutMs: 150, backoffMs: 10 });
    await assert.rejects(client.put('k', 'v'), (err: unknown) => {
      assert.ok(err instanceof UnavailableError && !(err instanceof OutcomeUnknownError), String(err));
      assert.equal(err.code, 'UNREACHABLE');
      // The last attempt may have had less than 150 ms left of the 700 ms deadline.
      const within = /could not connect within (\d+) ms/.exec(err.message);
      assert.ok(within !== null && Number(within[1]) <= 150, err.message);
      return true;
    });
    assert.ok(sockets.length >= 2, 'it was retried');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

test('readiness: /readyz 200 is ready; 503 NOT_READY gives the reason; a node without /readyz is judged by its status', async () => {
  const down = await downNodeUrl();
  const status = (leader: string | null): Reply => ok({ id: 'n3', role: 'follower', term: 2, leader, commitIndex: 1, appliedIndex: 1, lastIndex: 1, members: [], clusterId: 'c1d2', alarms: ['NO_SPACE'] });
  await withNodes(
    [
      startFakeNode('n1', (r) => (r.url === '/readyz' ? ok({ ready: true, leader: 'n1' }) : errorReply(404, 'NOT_FOUND'))),
      startFakeNode('n2', (r) => (r.url === '/readyz' ? { status: 503, json: { error: { code: 'NOT_READY', message: 'no leader' } } } : errorReply(404, 'NOT_FOUND'))),
      startFakeNode('n3', (r) => (r.url === '/readyz' ? errorReply(404, 'NOT_FOUND') : status('n1'))),
    ],
    async ([a, b, c]) => {
      const client = new RaftKvClient({ endpoints: [a!.url, b!.url, c!.url, down], timeoutMs: 2000 });
      const ready = await client.readyOfAll();
      assert.deepEqual(
        ready.map((r) => [r.isReady, r.leader, r.code]),
        [
          [true, 'n1', null],
          [false, null, 'NOT_READY'],
          [true, 'n1', null],
          [false, null, 'UNREACHABLE'],
        ],
      );
      assert.equal(ready[1]!.reason, 'no leader');
      assert.equal(await client.isReady(), true);
      const solo = new RaftKvClient({ endpoints: [b!.url, down], timeoutMs: 2000 });
      assert.equal(await solo.isReady(), false);
      const s = await new RaftKvClient({ endpoints: [c!.url], timeoutMs: 2000 }).status();
      assert.deepEqual([s.clusterId, s.alarms], ['c1d2', ['NO_SPACE']]);
    },
  );
});

test('a write that may have been applied (504) and is then refused at the door (401) stays outcome-unknown', () =>
  withNodes([startFakeNode('n1', () => errorReply(504, 'TIMEOUT')), startFakeNode('n2', () => ok({ index: 1, revision: 1 }), { token: 'other-token' })], async ([slow, guarded]) => {
    const client = new RaftKvClient({ endpoints: [slow!.url, guarded!.url], token: TOKEN, timeoutMs: 3000, backoffMs: 5 });
    await assert.rejects(client.put('k', 'v'), (err: unknown) => {
      assert.ok(err instanceof OutcomeUnknownError, String(err));
      assert.ok(err.cause instanceof UnauthenticatedError);
      assert.equal(err.idempotencyKey, slow!.requests[0]!.headers['idempotency-key']);
      return true;
    });
    assert.deepEqual([slow!.requests.length, guarded!.requests.length], [1, 1]);
  }));
