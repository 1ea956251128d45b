// The adversary suite on the client port of a plain 3-node cluster (issue 9, "Proof"; API.md
// "Security" and "Health and limits"): the register route that used to commit any address, member
// addresses and ids that do not parse, a transaction whose reply could not be built, a browser's
// POST without JSON, CORS, slow headers and bodies, idle floods past --max-client-connections and
// thousands of malformed requests. After each attack, assertUnharmed (unharmed.ts).
//
// Node checks a whole request against a 30 s deadline (slow bodies), so the slow body starts in
// `before` and is judged by the last test, while the other attacks run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { TestCluster, type TestNode } from '../cluster/harness.js';
import { assertApiError, http, type HttpReply } from '../cluster/http.js';
import { RawHttp, destroyRawHttp } from './raw-http.js';
import { Ledger, assertUnharmed, metric } from './unharmed.js';

const MAX_CLIENT_CONNECTIONS = 64;
const MAX_RESPONSE_BYTES = 1 << 20;
const MAX_VALUE_BYTES = 256 << 10;
const BODY_DEADLINE_MS = 30_000;
const HEADERS_DEADLINE_MS = 10_000;
const KEEP_ALIVE_MS = 5000;

let cluster: TestCluster | undefined;
let ledger: Ledger;
/** A follower: the slow clients' target, so the leader keeps serving writes meanwhile. */
let slowTarget: TestNode;
let slowBody: RawHttp;
before(async () => {
  cluster = await TestCluster.start({
    size: 3,
    name: 'adv-http',
    extraArgs: ['--max-response-bytes', String(MAX_RESPONSE_BYTES), '--max-value-bytes', String(MAX_VALUE_BYTES), '--max-client-connections', String(MAX_CLIENT_CONNECTIONS)],
  });
  ledger = await Ledger.open(cluster);
  const leader = await cluster.waitForLeader();
  slowTarget = cluster.nodes.find((n) => n !== leader)!;
  ledger.foreignKeys.add('foreign/slow-body');
  slowBody = new RawHttp(slowTarget)
    .write('PUT /v1/kv/foreign%2Fslow-body HTTP/1.1\r\nHost: raftkv\r\nContent-Length: 100000\r\n\r\n')
    .trickleEvery(500, () => 'x');
});
after(async () => {
  destroyRawHttp();
  await cluster?.destroy();
});

async function roles(): Promise<{ leader: TestNode; follower: TestNode }> {
  const leader = await cluster!.waitForLeader(10_000);
  return { leader, follower: cluster!.nodes.find((n) => n !== leader)! };
}

const json = (body: unknown): { method: string; body: string; headers: Record<string, string> } => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

test('POST /v1/internal/register is not an HTTP route: 404 on every node, nothing registered', async () => {
  ledger.attackerIds.add('mallory-http');
  for (const node of cluster!.nodes) {
    for (const body of [
      { id: 'mallory-http', peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10\r\nX-Evil: 1' },
      { id: 'mallory-http', peerAddr: 'no port at all', clientAddr: '127.0.0.1:10' },
      { id: node.id, peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' },
    ]) {
      assertApiError(await http(node.url, '/v1/internal/register', json(body)), 404, 'NOT_FOUND', `${node.id} POST /v1/internal/register`);
    }
    assertApiError(await http(node.url, '/v1/internal/read-index', json({})), 404, 'NOT_FOUND', `${node.id} POST /v1/internal/read-index`);
    // Nor by a path that normalizes to it, on a node that would forward what needs the leader.
    for (const path of ['/v1/members/../internal/register', '/v1/kv/%2e%2e/internal/register', '/v1/txn/../internal/register', '//v1/internal/register', '/v1/internal/register/']) {
      const reply = await http(node.url, path, json({ id: 'mallory-http', peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' }));
      assert.ok(reply.status === 404 || reply.status === 400, `${node.id} POST ${path} answered ${reply.status}: ${reply.text.slice(0, 200)}`);
    }
  }
  await assertUnharmed(ledger, 'POST /v1/internal/register');
});

test('POST /v1/members with a CR/LF in clientAddr or a peerAddr that does not parse: 400, nothing committed', async () => {
  const { leader, follower } = await roles();
  const bad = [
    { id: 'evil-crlf', peerAddr: '127.0.0.1:7001', clientAddr: '127.0.0.1:7002\r\nSet-Cookie: a=b' },
    { id: 'evil-lf', peerAddr: '127.0.0.1:7001', clientAddr: 'host\n:7002' },
    { id: 'evil-words', peerAddr: 'not an address', clientAddr: '127.0.0.1:7002' },
    { id: 'evil-port', peerAddr: '127.0.0.1:99999', clientAddr: '127.0.0.1:7002' },
    { id: 'evil-v6', peerAddr: '[::1', clientAddr: '127.0.0.1:7002' },
    { id: 'evil-url', peerAddr: 'http://127.0.0.1:7001', clientAddr: '127.0.0.1:7002' },
    { id: 'evil-path', peerAddr: '127.0.0.1:7001/x', clientAddr: '127.0.0.1:7002' },
    { id: 'evil-empty', peerAddr: '', clientAddr: '127.0.0.1:7002' },
    { id: 'evil-number', peerAddr: 7001, clientAddr: '127.0.0.1:7002' },
    { id: 'evil\r\nid', peerAddr: '127.0.0.1:7001', clientAddr: '127.0.0.1:7002' },
  ];
  for (const body of bad) if (/^[\w.-]+$/.test(body.id)) ledger.attackerIds.add(body.id);
  for (const via of [leader, follower]) {
    for (const body of bad) {
      assertApiError(await http(via.url, '/v1/members', json(body)), 400, 'BAD_REQUEST', `POST /v1/members ${JSON.stringify(body)} through ${via.id}`);
    }
  }
  await assertUnharmed(ledger, 'POST /v1/members with bad addresses');
});

test('DELETE /v1/members/%ZZ and other malformed member ids: 400, never 500', async () => {
  const { leader, follower } = await roles();
  const ids = ['%ZZ', '%E0%A4%A', '%C3%28', 'a%2Fb', 'a%0D%0Ab', '%00', 'a%20b', 'x'.repeat(65), '%F0%9F%92%A3'];
  for (const via of [leader, follower]) {
    for (const id of ids) {
      assertApiError(await http(via.url, `/v1/members/${id}`, { method: 'DELETE' }), 400, 'BAD_REQUEST', `DELETE /v1/members/${id.slice(0, 20)} through ${via.id}`);
      assertApiError(await http(via.url, `/v1/members/${id}/promote`, { method: 'POST' }), 400, 'BAD_REQUEST', `POST /v1/members/${id.slice(0, 20)}/promote through ${via.id}`);
    }
  }
  await assertUnharmed(ledger, 'malformed member ids');
});

test('a 9 KB transaction of 128 range reads over large values: 413 REPLY_TOO_LARGE, its put not applied, the leader alive', async () => {
  const { leader, follower } = await roles();
  const prefix = 'big/large-values-for-the-reply-limit/';
  for (let i = 0; i < 8; i++) {
    const r = await http(leader.url, `/v1/kv/${encodeURIComponent(`${prefix}${i}`)}`, { method: 'PUT', body: 'v'.repeat(64 << 10) });
    assert.equal(r.status, 200, r.text);
  }
  const key = 'foreign/txn-put-behind-reads';
  ledger.foreignKeys.add(key);
  const txn = { compare: [], success: [...Array.from({ length: 127 }, () => ({ type: 'range', prefix, limit: 1000 })), { type: 'put', key, value: 'pwned' }], failure: [] };
  const body = JSON.stringify(txn);
  assert.ok(body.length > 9000 && body.length < 12_000, `the transaction is ${body.length} bytes`);
  for (const via of [leader, follower]) {
    const reply = await http(via.url, '/v1/txn', { method: 'POST', body, headers: { 'content-type': 'application/json' }, timeoutMs: 15_000 });
    assertApiError(reply, 413, 'REPLY_TOO_LARGE', `the transaction through ${via.id}`);
    assert.equal(reply.body.length < 4096, true, 'the refusal itself is small');
  }
  // A listing of the same values stops early rather than pass the limit.
  const listing = await http(leader.url, `/v1/kv?prefix=${encodeURIComponent(prefix)}&limit=10000`);
  assert.equal(listing.status, 200);
  assert.ok(listing.body.length <= MAX_RESPONSE_BYTES, `a listing of ${listing.body.length} bytes`);
  await assertUnharmed(ledger, 'a transaction whose reply would be too large');
});

test('a POST without Content-Type: application/json is refused with 415 and nothing is applied (no web page can write through a victim)', async () => {
  const { leader, follower } = await roles();
  const types = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', ''];
  for (const via of [leader, follower]) {
    for (const [i, type] of types.entries()) {
      const key = `foreign/415-${via.id}-${i}`;
      ledger.foreignKeys.add(key);
      const body = JSON.stringify({ compare: [], success: [{ type: 'put', key, value: 'pwned' }], failure: [] });
      assertApiError(await http(via.url, '/v1/txn', { method: 'POST', body, headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE', `POST /v1/txn as ${JSON.stringify(type)} through ${via.id}`);
    }
    // No Content-Type at all, as a raw request (the test client would add one).
    const key = `foreign/415-${via.id}-none`;
    ledger.foreignKeys.add(key);
    const body = JSON.stringify({ compare: [], success: [{ type: 'put', key, value: 'pwned' }], failure: [] });
    const raw = new RawHttp(via).write(`POST /v1/txn HTTP/1.1\r\nHost: raftkv\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    assert.deepEqual(await raw.waitResponses(1, 5000), [415], `POST /v1/txn without a content type through ${via.id}: ${raw.received.slice(0, 200)}`);
    ledger.attackerIds.add('mallory-415');
    assertApiError(
      await http(via.url, '/v1/members', { method: 'POST', body: JSON.stringify({ id: 'mallory-415', peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' }), headers: { 'content-type': 'text/plain' } }),
      415, 'UNSUPPORTED_MEDIA_TYPE', `POST /v1/members as text/plain through ${via.id}`,
    );
    const other = cluster!.nodes.find((n) => n !== leader)!;
    assertApiError(
      await http(via.url, '/v1/leader/transfer', { method: 'POST', body: JSON.stringify({ to: other.id }), headers: { 'content-type': 'text/plain' } }),
      415, 'UNSUPPORTED_MEDIA_TYPE', `POST /v1/leader/transfer as text/plain through ${via.id}`,
    );
  }
  assert.equal((await cluster!.waitForLeader(5000)).id, leader.id, 'no transfer happened');
  await assertUnharmed(ledger, 'POSTs without JSON');
});

test('no CORS headers for an origin that --cors-origins does not list', async () => {
  const { leader, follower } = await roles();
  const hasCors = (r: HttpReply): string[] => Object.keys(r.headers).filter((h) => h.startsWith('access-control-'));
  for (const via of [leader, follower]) {
    const get = await http(via.url, '/v1/status', { headers: { origin: 'https://evil.example' } });
    assert.equal(get.status, 200);
    assert.deepEqual(hasCors(get), [], `GET with an unlisted Origin through ${via.id}`);
    const preflight = await http(via.url, '/v1/txn', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    assert.ok(preflight.status >= 400, `a preflight from an unlisted origin through ${via.id} answered ${preflight.status}`);
    assert.deepEqual(hasCors(preflight), [], `the preflight through ${via.id} carries no CORS header`);
  }
  await assertUnharmed(ledger, 'cross-origin requests');
});

test('slow headers, an idle keep-alive connection and an idle flood past --max-client-connections are cut in seconds; the node serves again', { timeout: 40_000 }, async () => {
  const target = slowTarget;
  const slowHeaders = new RawHttp(target).write('GET /v1/status HTTP/1.1\r\nHost: raftkv\r\n').trickleEvery(500, () => 'X-Trickle: 1\r\n');
  const keepAlive = new RawHttp(target).write('GET /livez HTTP/1.1\r\nHost: raftkv\r\n\r\n');
  await keepAlive.waitResponses(1, 3000);
  const FLOOD = MAX_CLIENT_CONNECTIONS + 40;
  const flood = Array.from({ length: FLOOD }, () => new RawHttp(target));
  await new Promise((r) => setTimeout(r, 1000));
  const refused = flood.filter((c) => c.isClosed).length;
  assert.ok(refused >= 30, `${target.id} refused ${refused} of ${FLOOD} idle connections at once with --max-client-connections ${MAX_CLIENT_CONNECTIONS}`);
  // Meanwhile the cluster serves through the other nodes.
  for (const via of cluster!.nodes.filter((n) => n !== target)) await ledger.writeSome(2, via);
  assert.ok(await keepAlive.waitClosed(KEEP_ALIVE_MS + 3000), 'an idle keep-alive connection is closed');
  assert.ok(keepAlive.closedAfterMs! >= KEEP_ALIVE_MS - 500, `the idle keep-alive connection closed after ${keepAlive.closedAfterMs?.toFixed(0)} ms`);
  const bound = HEADERS_DEADLINE_MS + 4000;
  assert.ok(await slowHeaders.waitClosed(bound), `headers trickled for ${bound} ms were not cut`);
  for (const c of flood) assert.ok(await c.waitClosed(bound), `an idle connection outlived ${bound} ms`);
  // And the node itself serves again.
  const status = await http(target.url, '/v1/status', { timeoutMs: 3000 });
  assert.equal(status.status, 200);
  await ledger.writeSome(2, target);
  await assertUnharmed(ledger, 'slow headers and an idle flood');
});

test('a flood of 3000 malformed, aborted and refused requests in a few seconds: the node stays up and its log grows by little', { timeout: 60_000 }, async () => {
  const { leader: target } = await roles();
  const logBefore = statSync(target.logFile).size;
  const stderrBefore = target.stderr.length;
  const refusedBefore = await metric(target, 'raftkv_http_refused_total{reason="HPE_INVALID_METHOD"}');
  const started = Date.now();
  const batch = async (n: number, open: () => RawHttp): Promise<void> => {
    const conns = Array.from({ length: n }, open);
    await Promise.all(conns.map((c) => c.waitClosed(5000)));
    for (const c of conns) c.destroy();
  };
  const pipelined = (count: number, request: string): RawHttp => new RawHttp(target).write(request.repeat(count));
  const badJson = 'POST /v1/txn HTTP/1.1\r\nHost: raftkv\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n{';
  const work: Promise<unknown>[] = [];
  // 1000 requests that do not parse (each closes its connection), 40 connections at a time.
  work.push((async () => {
    for (let i = 0; i < 25; i++) await batch(40, () => new RawHttp(target).write('BREW /coffee HTCPCP/1.0\r\n\r\n'));
  })());
  // 1200 requests with a bad key or bad JSON, pipelined on keep-alive connections.
  const pipes = [
    ...Array.from({ length: 4 }, () => pipelined(150, 'GET /v1/kv/%ZZ HTTP/1.1\r\nHost: raftkv\r\n\r\n')),
    ...Array.from({ length: 4 }, () => pipelined(150, badJson)),
  ];
  // 800 bodies abandoned midway, 40 at a time.
  work.push((async () => {
    for (let i = 0; i < 20; i++) {
      await batch(40, () => {
        const c = new RawHttp(target).write('PUT /v1/kv/foreign%2Faborted HTTP/1.1\r\nHost: raftkv\r\nContent-Length: 1000\r\n\r\nabc');
        setTimeout(() => c.socket.resetAndDestroy(), 20);
        return c;
      });
    }
  })());
  ledger.foreignKeys.add('foreign/aborted');
  await Promise.all(work);
  const answered = await Promise.all(pipes.map((p) => p.waitResponses(150, 20_000)));
  const seconds = (Date.now() - started) / 1000;
  for (const statuses of answered) {
    assert.equal(statuses.length, 150, 'every pipelined request was answered');
    assert.ok(statuses.every((s) => s === 400), `pipelined bad requests answered ${[...new Set(statuses)].join(', ')}`);
  }
  assert.ok(seconds < 30, `the flood took ${seconds.toFixed(1)} s`);
  cluster!.assertNoUnexpectedExit();
  assert.equal((await http(target.url, '/livez')).status, 200);
  const logGrowth = statSync(target.logFile).size - logBefore;
  const stderrGrowth = target.stderr.length - stderrBefore;
  assert.ok(logGrowth < 256 << 10, `${target.id}'s log grew by ${logGrowth} bytes for 3000 bad requests`);
  assert.ok(stderrGrowth < 16 << 10, `${target.id}'s stderr grew by ${stderrGrowth} bytes`);
  assert.ok((await metric(target, 'raftkv_http_refused_total{reason="HPE_INVALID_METHOD"}')) >= refusedBefore + 500, 'the unparsable requests are counted');
  await assertUnharmed(ledger, 'a flood of malformed requests');
});

test('a body trickled since the suite began is cut by the 30 s request deadline, nothing of it applied; the node serves again', { timeout: 60_000 }, async () => {
  assert.ok(await slowBody.waitClosed(BODY_DEADLINE_MS + 10_000), 'a body trickled one byte every 500 ms was never cut');
  assert.ok(slowBody.closedAfterMs! <= BODY_DEADLINE_MS + 5000, `the slow body was cut after ${slowBody.closedAfterMs!.toFixed(0)} ms`);
  assert.equal((await http(slowTarget.url, '/v1/status')).status, 200);
  await assertUnharmed(ledger, 'a slow body');
});
