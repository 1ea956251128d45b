// RaftKvClient against scripted nodes on real sockets: leader following, failover past a down
// node, safe write retries with one Idempotency-Key, Retry-After, deadlines, binary values,
// and the typed error for each status of docs/api.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BadRequestError,
  ChangeInProgressError,
  CompareFailedError,
  NotFoundError,
  OutcomeUnknownError,
  RaftKvClient,
  RaftKvClientError,
  TooLargeError,
  UnavailableError,
} from '../../src/client/index.js';
import { downNodeUrl, errorReply, kvScript, startFakeNode, withNodes, type Reply } from './fake-node.js';

const ok = (json: unknown): Reply => ({ status: 200, json });

test('a follower that answers 503 naming the leader: the client goes to the leader and then stays with it', () =>
  withNodes([startFakeNode('n2', () => errorReply(503, 'NO_LEADER', { 'retry-after': '1' })), startFakeNode('n1', () => ok({ index: 7, revision: 7 }))], async ([follower, leader]) => {
    follower!.leader = leader!.url;
    leader!.leader = leader!.url;
    const client = new RaftKvClient({ endpoints: [follower!.url, leader!.url], timeoutMs: 3000 });
    const started = Date.now();
    assert.deepEqual(await client.put('a', 'x'), { index: 7, revision: 7 });
    // The 503 named a leader not yet tried: a redirect, followed without waiting out Retry-After.
    assert.ok(Date.now() - started < 800, `took ${Date.now() - started} ms`);
    assert.equal(client.leader, leader!.url);
    await client.put('b', 'y');
    assert.equal(follower!.requests.length, 1);
    assert.equal(leader!.requests.length, 2);
  }));

test('a node that is down (closed port) is skipped at once and the write is not reported as outcome-unknown', async () => {
  const down = await downNodeUrl();
  await withNodes([startFakeNode('n2', () => ok({ index: 3, revision: 3 }))], async ([up]) => {
    const client = new RaftKvClient({ endpoints: [down, up!.url], timeoutMs: 3000 });
    const started = Date.now();
    assert.deepEqual(await client.put('k', 'v'), { index: 3, revision: 3 });
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    assert.equal(up!.requests.length, 1);
  });
  const allDown = new RaftKvClient({ endpoints: [down, await downNodeUrl()], timeoutMs: 2000, retries: 4, backoffMs: 10 });
  await assert.rejects(allDown.put('k', 'v'), (err: unknown) => {
    assert.ok(err instanceof UnavailableError, String(err));
    assert.ok(!(err instanceof OutcomeUnknownError));
    assert.equal(err.code, 'UNREACHABLE');
    assert.equal(err.status, null);
    return true;
  });
});

test('a 504 then success: the retry carries the identical Idempotency-Key, the next write a new one', () =>
  withNodes([startFakeNode('n1', (_req, n) => (n === 1 ? errorReply(504, 'TIMEOUT') : ok({ index: 10 + n, revision: 10 + n })))], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], clientId: 'c-test', timeoutMs: 3000, backoffMs: 5 });
    assert.deepEqual(await client.put('k', 'v1'), { index: 12, revision: 12 });
    await client.put('k', 'v2');
    const keys = node!.requests.map((r) => r.headers['idempotency-key']);
    assert.equal(keys.length, 3);
    assert.equal(keys[0], keys[1]);
    assert.match(String(keys[0]), /^c-test\/\d+$/);
    assert.notEqual(keys[2], keys[0]);
    assert.equal(node!.requests[0]!.body.toString(), 'v1');
    assert.equal(node!.requests[1]!.body.toString(), 'v1');
  }));

test('a write that keeps timing out (504) fails with OutcomeUnknownError naming its key, within the deadline', () =>
  withNodes([startFakeNode('n1', () => errorReply(504, 'TIMEOUT'))], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 600, retries: 50, backoffMs: 20, maxBackoffMs: 100 });
    const started = Date.now();
    await assert.rejects(client.delete('k'), (err: unknown) => {
      assert.ok(err instanceof OutcomeUnknownError, String(err));
      assert.equal(err.status, 504);
      assert.match(err.message, /outcome is unknown/);
      assert.equal(err.idempotencyKey, node!.requests[0]!.headers['idempotency-key']);
      return true;
    });
    // Generous slack for a loaded machine: the point is that it stops near the deadline, not after 50 retries.
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    assert.ok(node!.requests.length >= 2);
    assert.equal(new Set(node!.requests.map((r) => r.headers['idempotency-key'])).size, 1);
  }));

test('a write with no answer at all (the node hangs) is outcome-unknown; a read that hangs is unavailable', () =>
  withNodes([startFakeNode('n1', () => 'hang')], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 400, attemptTimeoutMs: 150, backoffMs: 10 });
    await assert.rejects(client.put('k', 'v'), OutcomeUnknownError);
    await assert.rejects(client.get('k'), (err: unknown) => err instanceof UnavailableError && !(err instanceof OutcomeUnknownError) && err.code === 'NO_ANSWER');
  }));

test('Retry-After is honoured, and bounded by maxBackoffMs', () =>
  withNodes([startFakeNode('n1', (_r, n) => (n % 2 === 1 ? errorReply(503, 'NO_QUORUM', { 'retry-after': '1' }) : ok({ index: n, revision: n })))], async ([node]) => {
    const honouring = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 5000, backoffMs: 5, maxBackoffMs: 5000 });
    await honouring.put('k', 'v');
    const gap1 = node!.requests[1]!.at - node!.requests[0]!.at;
    assert.ok(gap1 >= 950, `waited only ${gap1} ms for Retry-After: 1`);
    const bounded = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 5000, backoffMs: 5, maxBackoffMs: 200 });
    await bounded.put('k', 'v');
    const gap2 = node!.requests[3]!.at - node!.requests[2]!.at;
    assert.ok(gap2 >= 150 && gap2 < 2000, `waited ${gap2} ms with maxBackoffMs 200`);
  }));

test('a cluster that keeps answering 503 ends in UnavailableError by the deadline, not a loop', () =>
  withNodes([startFakeNode('n1', () => errorReply(503, 'NO_LEADER', { 'retry-after': '1' }))], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 300, retries: 1000 });
    const started = Date.now();
    await assert.rejects(client.put('k', 'v'), (err: unknown) => {
      assert.ok(err instanceof UnavailableError && !(err instanceof OutcomeUnknownError), String(err));
      assert.equal(err.code, 'NO_LEADER');
      assert.equal(err.status, 503);
      assert.equal(err.retryAfterMs, 1000);
      return true;
    });
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    // A 1 s Retry-After does not fit a 300 ms deadline: the client stops instead of sleeping past it.
    assert.equal(node!.requests.length, 1);
  }));

test('binary and text values round-trip; keys are path-encoded', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 3000 });
    const bytes = new Uint8Array([0xff, 0x00, 0xfe, 0x80, 0x41]);
    const key = 'dir/sub key?ü#%';
    await client.put(key, bytes);
    assert.equal(node!.requests[0]!.url, `/v1/kv/${encodeURIComponent(key)}`);
    assert.deepEqual(new Uint8Array(node!.requests[0]!.body), bytes);
    const rec = await client.get(key);
    assert.ok(rec !== null);
    assert.deepEqual(rec.value, bytes);
    assert.equal(rec.key, key);
    await client.put('t', 'héllo ✓');
    assert.equal(await client.getString('t'), 'héllo ✓');
    assert.deepEqual((await client.get('t'))!.value, new TextEncoder().encode('héllo ✓'));
    assert.equal(await client.get('missing'), null);
    assert.equal(await client.getString('missing'), null);
  }));

test('conditions and consistency travel as query parameters', () =>
  withNodes([startFakeNode('n1', (r) => (r.method === 'GET' ? errorReply(404, 'NOT_FOUND') : ok({ index: 1, deleted: true, revision: 1 })))], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 3000 });
    await client.put('k', 'v', { prevValue: 'old', prevIndex: 4, prevExist: true });
    await client.delete('k', { prevIndex: 9 });
    await client.get('k', { consistency: 'stale' });
    const q = node!.requests.map((r) => new URL(r.url, 'http://x').searchParams);
    assert.deepEqual(Object.fromEntries(q[0]!), { prevValue: 'old', prevIndex: '4', prevExist: 'true' });
    assert.deepEqual(Object.fromEntries(q[1]!), { prevIndex: '9' });
    assert.deepEqual(Object.fromEntries(q[2]!), { consistency: 'stale' });
    assert.equal(node!.requests[1]!.method, 'DELETE');
  }));

const TYPED: [number, string, new (...a: never[]) => RaftKvClientError][] = [
  [400, 'BAD_REQUEST', BadRequestError],
  [404, 'NOT_FOUND', NotFoundError],
  [409, 'CHANGE_IN_PROGRESS', ChangeInProgressError],
  [412, 'COMPARE_FAILED', CompareFailedError],
  [413, 'VALUE_TOO_LARGE', TooLargeError],
  [413, 'KEY_TOO_LARGE', TooLargeError],
];
for (const [status, code, Class] of TYPED) {
  test(`a ${status} ${code} is raised as ${Class.name} at once, without retrying`, () =>
    withNodes([startFakeNode('n1', () => errorReply(status, code))], async ([node]) => {
      const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 3000 });
      await assert.rejects(client.removeMember('n9'), (err: unknown) => {
        assert.ok(err instanceof Class, String(err));
        assert.ok(err instanceof RaftKvClientError);
        assert.equal(err.code, code);
        assert.equal(err.status, status);
        assert.equal(err.endpoint, node!.url);
        return true;
      });
      assert.equal(node!.requests.length, 1);
    }));
}

test('a 500 is the base RaftKvClientError; a body that is not our JSON still gives a code', () =>
  withNodes([startFakeNode('n1', (_r, n) => (n === 1 ? errorReply(500, 'INTERNAL') : { status: 502, bytes: new TextEncoder().encode('<html>') }))], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 3000 });
    await assert.rejects(client.put('k', 'v'), (err: unknown) => err instanceof RaftKvClientError && err.constructor === RaftKvClientError && err.code === 'INTERNAL' && err.status === 500);
    await assert.rejects(client.put('k', 'v'), (err: unknown) => err instanceof RaftKvClientError && err.code === 'HTTP_502');
  }));

test('list, txn, status, members and leader transfer parse the API shapes', () =>
  withNodes(
    [
      startFakeNode('n1', (r) => {
        const path = new URL(r.url, 'http://x').pathname;
        if (path === '/v1/kv') return ok({ items: [{ key: 'a/1', value: 'AAE=', encoding: 'base64', createIndex: 1, modIndex: 2, version: 2, createRevision: 2, modRevision: 3, lease: 0 }], more: true });
        if (path === '/v1/txn') return ok({ succeeded: false, index: 5, revision: 5, responses: [{ type: 'get' }] });
        if (path === '/v1/status') return ok({ id: 'n1', role: 'leader', term: 3, leader: 'n1', commitIndex: 9, appliedIndex: 9, lastIndex: 10, members: [] });
        if (path === '/v1/members') return ok({ members: [{ id: 'n1', peerAddr: '127.0.0.1:8001', clientAddr: 'http://127.0.0.1:7001', role: 'voter' }] });
        if (path === '/v1/leader/transfer') return ok({ leader: 'n2' });
        return errorReply(404, 'NOT_FOUND');
      }),
    ],
    async ([node]) => {
      const client = new RaftKvClient({ endpoints: [node!.url], timeoutMs: 3000 });
      const listed = await client.list('a/', 10);
      assert.equal(listed.more, true);
      assert.deepEqual(listed.items[0]!.value, new Uint8Array([0, 1]));
      assert.equal(node!.requests[0]!.url, '/v1/kv?prefix=a%2F&limit=10');
      const txn = await client.txn({ compare: [{ key: 'a', target: 'value', op: '=', value: new Uint8Array([0xff]) }], success: [{ type: 'put', key: 'a', value: 'b' }], failure: [{ type: 'get', key: 'a' }] });
      assert.deepEqual(txn, { succeeded: false, index: 5, revision: 5, responses: [{ type: 'get' }] });
      const sent = JSON.parse(node!.requests[1]!.body.toString()) as { compare: unknown[] };
      assert.deepEqual(sent.compare[0], { key: 'a', target: 'value', op: '=', value: '/w==', encoding: 'base64' });
      assert.ok(node!.requests[1]!.headers['idempotency-key'] !== undefined);
      assert.equal((await client.status()).commitIndex, 9);
      assert.equal((await client.members())[0]!.clientAddr, 'http://127.0.0.1:7001');
      assert.deepEqual(await client.transferLeader('n2'), { leader: 'n2' });
      assert.deepEqual(JSON.parse(node!.requests.at(-1)!.body.toString()), { to: 'n2' });
    },
  ));

test('statusOfAll asks every endpoint once and reports the down ones', async () => {
  const down = await downNodeUrl();
  await withNodes([startFakeNode('n1', () => ok({ id: 'n1', role: 'follower', term: 2, leader: null, commitIndex: 1, appliedIndex: 1, lastIndex: 1, members: [] }))], async ([node]) => {
    const client = new RaftKvClient({ endpoints: [node!.url, down], timeoutMs: 2000 });
    const all = await client.statusOfAll();
    assert.equal(all.length, 2);
    assert.ok('status' in all[0]! && all[0].status.role === 'follower');
    assert.ok('error' in all[1]! && /ECONNREFUSED/.test(all[1].error.message));
  });
});

test('bad input is refused before anything is sent', async () => {
  assert.throws(() => new RaftKvClient({ endpoints: [] }), TypeError);
  assert.throws(() => new RaftKvClient({ endpoints: ['ftp://x:1'] }), TypeError);
  assert.throws(() => new RaftKvClient({ endpoints: ['http://127.0.0.1:1'], clientId: 'a/b' }), TypeError);
  const client = new RaftKvClient({ endpoints: ['http://127.0.0.1:1'], timeoutMs: 100 });
  await assert.rejects(client.put('', 'v'), BadRequestError);
  await assert.rejects(client.put('k', 'v', { prevValue: new Uint8Array([0xff]) }), BadRequestError);
  await assert.rejects(client.list('', -1), BadRequestError);
});
