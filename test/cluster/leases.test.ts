// Leases on a real 3-node cluster (API.md "Coordination", etcd's semantics): granted through any
// node, keys attached with ?lease, expiry decided by the leader alone and committed through the
// log (the keys go on every node, at one revision), a lease kept alive through any node outlives
// many TTLs and a kill -9 of the leader (the new leader must not expire it: it gives every lease
// a fresh TTL), revoke, the minimum TTL, and every bad input answered 400 with a JSON error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil, runMain, TestCluster, type TestNode } from './harness.js';
import { assertApiError, http, metricValue, parseMetrics, tryHttp, type HttpReply } from './http.js';
import { BadRequestError, LeaseExistsError, LeaseLostError, NotFoundError, RaftKvClient } from '../../src/client/index.js';

/** The election timeout: the minimum TTL is ceil(1.5 × 700 ms) = 2 s. */
const ELECTION_MS = 700;
const MIN_TTL = 2;

let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'leases', electionMs: ELECTION_MS, heartbeatMs: 70 });
});
after(async () => {
  await cluster?.destroy();
});

const kv = (key: string, query = ''): string => `/v1/kv/${encodeURIComponent(key)}${query}`;
function ok<T = Record<string, unknown>>(reply: HttpReply, what: string): T {
  assert.equal(reply.status, 200, `${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
  return reply.json<T>();
}
const post = (base: string, path: string, body?: unknown): Promise<HttpReply> =>
  http(base, path, { method: 'POST', ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });

async function followers(): Promise<TestNode[]> {
  const leader = await cluster.waitForLeader();
  return cluster.nodes.filter((n) => n !== leader && n.isRunning);
}

async function grant(via: TestNode, ttlSeconds: number): Promise<number> {
  const g = ok<{ id: number; ttlSeconds: number }>(await post(via.url, '/v1/leases', { ttlSeconds }), `grant via ${via.id}`);
  assert.ok(Number.isSafeInteger(g.id) && g.id > 0, `a positive safe integer id, not ${g.id}`);
  return g.id;
}

test('a lease granted through a follower expires without keepalives: its keys go on every node, at one revision', async () => {
  const [f1, f2] = await followers();
  const started = Date.now();
  const id = await grant(f1!, MIN_TTL);
  const leader = await cluster.waitForLeader();
  ok(await http(f2!.url, kv('exp/a', `?lease=${id}`), { method: 'PUT', body: 'a' }), 'put with the lease');
  const put = ok<{ revision: number }>(await http(leader.url, kv('exp/b', `?lease=${id}`), { method: 'PUT', body: 'b' }), 'put with the lease');
  const ttl = ok<{ id: number; ttlSeconds: number; grantedTtlSeconds: number; keys: string[]; more: boolean }>(await http(f2!.url, `/v1/leases/${id}?keys`), 'ttl via a follower');
  assert.deepEqual([ttl.id, ttl.grantedTtlSeconds, ttl.keys, ttl.more], [id, MIN_TTL, ['exp/a', 'exp/b'], false]);
  assert.ok(ttl.ttlSeconds >= 1 && ttl.ttlSeconds <= MIN_TTL, `remaining ${ttl.ttlSeconds}`);
  const listed = ok<{ leases: { id: number }[] }>(await http(f1!.url, '/v1/leases'), 'list');
  assert.ok(listed.leases.some((l) => l.id === id));

  for (const node of cluster.nodes) {
    await pollUntil(`the lease's keys gone on ${node.id}`, 10_000, async () => ((await http(node.url, kv('exp/a', '?consistency=stale'))).status === 404 && (await http(node.url, kv('exp/b', '?consistency=stale'))).status === 404 ? true : undefined), 50);
  }
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= MIN_TTL * 1000 - 100, `expired after ${elapsed} ms, before its ${MIN_TTL} s TTL`);
  for (const node of cluster.nodes) {
    // Both keys went in one revision: the one after the last put.
    const before = ok<{ items: { key: string }[] }>(await http(node.url, `/v1/kv?prefix=exp/&revision=${put.revision}`), 'list before the expiry');
    assert.deepEqual(before.items.map((i) => i.key), ['exp/a', 'exp/b']);
    const afterIt = ok<{ items: unknown[] }>(await http(node.url, `/v1/kv?prefix=exp/&revision=${put.revision + 1}`), 'list at the expiry');
    assert.deepEqual(afterIt.items, []);
  }
  assertApiError(await http(f1!.url, `/v1/leases/${id}`), 404, 'LEASE_NOT_FOUND', 'ttl of the expired lease');
  assertApiError(await post(f2!.url, `/v1/leases/${id}/keepalive`), 404, 'LEASE_NOT_FOUND', 'keepalive of the expired lease');
  const metrics = parseMetrics((await http(leader.url, '/metrics')).text);
  assert.ok(metricValue(metrics, 'raftkv_leases_expired_total') >= 1);
  assert.ok(metricValue(metrics, 'raftkv_leases') >= 0);
});

/** Keepalives through every node in turn, every `everyMs`, until stopped; counts what each got. */
function keepAliveLoop(id: number, everyMs: number): { stop: () => Promise<void>; acked: number; failures: string[]; lastAck: () => number } {
  let running = true;
  let lastAck = Date.now();
  const state = { acked: 0, failures: [] as string[] };
  let i = 0;
  const loop = (async () => {
    while (running) {
      const due = Date.now() + everyMs;
      // Try nodes in turn until one acknowledges (a dead node, or one mid-election, answers nothing or 503).
      while (running && Date.now() < lastAck + MIN_TTL * 1000 * 3) {
        const node = cluster.nodes[i++ % cluster.nodes.length]!;
        const r = node.isRunning ? await tryHttp(node.url, `/v1/leases/${id}/keepalive`, { method: 'POST', timeoutMs: 1000 }) : null;
        if (r?.status === 200) {
          lastAck = Date.now();
          state.acked++;
          break;
        }
        state.failures.push(r === null ? `${node.id}: no answer` : `${node.id}: ${r.status} ${r.text.slice(0, 120)}`);
        if (r?.status === 404) return;
        await new Promise((res) => setTimeout(res, 50));
      }
      await new Promise((res) => setTimeout(res, Math.max(0, due - Date.now())));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
    get acked() {
      return state.acked;
    },
    failures: state.failures,
    lastAck: () => lastAck,
  };
}

test('a lease kept alive every TTL/3 through any node outlives many TTLs and a kill -9 of the leader', { timeout: 90_000 }, async (t) => {
  const ttlSeconds = 3;
  const [f1] = await followers();
  const id = await grant(f1!, ttlSeconds);
  ok(await http(f1!.url, kv('alive/k', `?lease=${id}`), { method: 'PUT', body: 'v' }), 'put with the lease');
  const loop = keepAliveLoop(id, (ttlSeconds * 1000) / 3);
  try {
    await new Promise((res) => setTimeout(res, 3 * ttlSeconds * 1000));
    assert.equal((await http(f1!.url, kv('alive/k'))).status, 200, 'still there after three TTLs');
    const oldLeader = await cluster.waitForLeader();
    const oldTerm = (await oldLeader.status())!.term;
    await oldLeader.stop('SIGKILL');
    const newLeader = await pollUntil('a new leader among the survivors', 20_000, async () => {
      for (const n of cluster.nodes.filter((x) => x.isRunning)) {
        const s = await n.status(300);
        if (s?.role === 'leader' && s.term > oldTerm) return n;
      }
      return undefined;
    }, 20);
    t.diagnostic(`leader ${oldLeader.id} killed; ${newLeader.id} leads`);
    // Well past the old leader's deadlines (and past a TTL counted from the grant on any clock).
    await new Promise((res) => setTimeout(res, 3 * ttlSeconds * 1000));
    const s = ok<{ ttlSeconds: number; grantedTtlSeconds: number }>(await http(newLeader.url, `/v1/leases/${id}`), 'ttl on the new leader');
    assert.equal(s.grantedTtlSeconds, ttlSeconds);
    for (const n of cluster.nodes.filter((x) => x.isRunning)) {
      assert.equal((await http(n.url, kv('alive/k', '?consistency=stale'))).status, 200, `the kept-alive lease's key on ${n.id} after the failover`);
    }
    assert.ok(loop.acked >= 10, `only ${loop.acked} keepalives acknowledged`);
    t.diagnostic(`${loop.acked} keepalives acknowledged; ${loop.failures.length} attempts failed (${loop.failures.slice(0, 3).join('; ')})`);
    assert.ok(!loop.failures.some((f) => f.includes('404')), `the kept-alive lease was lost: ${loop.failures.join('; ')}`);
    const metrics = parseMetrics((await http(newLeader.url, '/metrics')).text);
    assert.ok(metricValue(metrics, 'raftkv_lease_keepalives_total') >= 1, 'the new leader acknowledged keepalives');
  } finally {
    await loop.stop();
  }
  // Bring the old leader back for the tests that follow.
  const killed = cluster.nodes.find((n) => !n.isRunning);
  if (killed !== undefined) await cluster.restart(killed, 'SIGKILL');
  await cluster.waitForReady(20_000);
  // Once keepalives stop, it does expire.
  await pollUntil('the lease to expire once keepalives stop', 20_000, async () => ((await http(f1!.url, kv('alive/k'))).status === 404 ? true : undefined), 100);
});

test('revoke through a follower deletes the keys; a TTL below the minimum is raised; missing leases are 404', async () => {
  const [f1, f2] = await followers();
  const g = ok<{ id: number; ttlSeconds: number }>(await post(f1!.url, '/v1/leases', { ttlSeconds: 1, id: 4242 }), 'grant with an id');
  assert.deepEqual(g, { id: 4242, ttlSeconds: MIN_TTL }, 'the TTL is raised to ceil(1.5 × election timeout)');
  assertApiError(await post(f2!.url, '/v1/leases', { ttlSeconds: 60, id: 4242 }), 409, 'LEASE_EXISTS', 'the same id again');
  const id = await grant(f2!, 600);
  ok(await http(f1!.url, kv('rev/a', `?lease=${id}`), { method: 'PUT', body: '1' }), 'put');
  ok(await http(f1!.url, kv('rev/b', `?lease=${id}`), { method: 'PUT', body: '2' }), 'put');
  const ka = ok<{ id: number; ttlSeconds: number }>(await post(f1!.url, `/v1/leases/${id}/keepalive`), 'keepalive via a follower');
  assert.deepEqual(ka, { id, ttlSeconds: 600 });
  const revoked = ok<{ revision: number; deleted: number }>(await http(f2!.url, `/v1/leases/${id}`, { method: 'DELETE' }), 'revoke');
  assert.equal(revoked.deleted, 2);
  assert.equal(revoked.revision > 0, true);
  for (const node of cluster.nodes) {
    assert.equal((await http(node.url, kv('rev/a'))).status, 404);
    assert.equal((await http(node.url, kv('rev/b'))).status, 404);
  }
  assertApiError(await http(f2!.url, `/v1/leases/${id}`, { method: 'DELETE' }), 404, 'LEASE_NOT_FOUND', 'revoke again');
  assertApiError(await post(f1!.url, '/v1/leases/987654321/keepalive'), 404, 'LEASE_NOT_FOUND', 'keepalive of a lease never granted');
  assertApiError(await http(f1!.url, '/v1/leases/987654321'), 404, 'LEASE_NOT_FOUND', 'ttl of a lease never granted');
  assertApiError(await http(f1!.url, kv('rev/c', '?lease=987654321'), { method: 'PUT', body: 'x' }), 404, 'LEASE_NOT_FOUND', 'a put naming a missing lease');
  ok(await http(f1!.url, '/v1/leases/4242', { method: 'DELETE' }), 'revoke the raised one');
});

test('bad input answers 400 with a JSON error and changes nothing', async () => {
  const [f1] = await followers();
  const leader = await cluster.waitForLeader();
  const before = ok<{ leases: unknown[] }>(await http(leader.url, '/v1/leases'), 'list').leases.length;
  for (const node of [f1!, leader]) {
    for (const body of [{ ttlSeconds: 0 }, { ttlSeconds: -5 }, { ttlSeconds: 1e12 }, { ttlSeconds: 1.5 }, { ttlSeconds: '5' }, { ttlSeconds: null }, {}, { ttlSeconds: 5, extra: 1 }, { ttlSeconds: 5, id: 0 }, { ttlSeconds: 5, id: -1 }, { ttlSeconds: 5, id: 2 ** 53 }, { ttlSeconds: 5, id: 1.5 }, { ttlSeconds: 5, id: '7' }, [5], 'x']) {
      assertApiError(await post(node.url, '/v1/leases', body), 400, 'BAD_REQUEST', `grant ${JSON.stringify(body)} via ${node.id}`);
    }
    assertApiError(await post(node.url, '/v1/leases', '{"ttlSeconds":'), 400, 'BAD_REQUEST', 'malformed JSON');
    assertApiError(await post(node.url, '/v1/leases'), 400, 'BAD_REQUEST', 'no body');
    assertApiError(await post(node.url, '/v1/leases?x=1', { ttlSeconds: 5 }), 400, 'BAD_REQUEST', 'unknown query parameter');
    for (const bad of ['abc', '0', '-1', '01', '1.5', '99999999999999999', '9007199254740992', '%00', 'x%2Fy']) {
      assertApiError(await http(node.url, `/v1/leases/${bad}`), 400, 'BAD_REQUEST', `ttl of lease "${bad}"`);
      assertApiError(await post(node.url, `/v1/leases/${bad}/keepalive`), 400, 'BAD_REQUEST', `keepalive of lease "${bad}"`);
      assertApiError(await http(node.url, `/v1/leases/${bad}`, { method: 'DELETE' }), 400, 'BAD_REQUEST', `revoke of lease "${bad}"`);
    }
    assertApiError(await post(node.url, '/v1/leases/5/keepalive', { ttlSeconds: 5 }), 400, 'BAD_REQUEST', 'keepalive with a field');
    assertApiError(await http(node.url, '/v1/leases/5?keys=maybe'), 400, 'BAD_REQUEST', 'keys with a value');
    assertApiError(await http(node.url, '/v1/leases?limit=0'), 400, 'BAD_REQUEST', 'limit 0');
    assertApiError(await http(node.url, '/v1/leases?after=-1'), 400, 'BAD_REQUEST', 'after -1');
    assertApiError(await http(node.url, '/v1/leases/5/renew', { method: 'POST', body: '{}' }), 404, 'NOT_FOUND', 'an unknown lease endpoint');
    assertApiError(await http(node.url, '/v1/leases/5/keepalive'), 405, 'METHOD_NOT_ALLOWED', 'GET of keepalive');
    assertApiError(await http(node.url, '/v1/leases', { method: 'PUT', body: '{}' }), 405, 'METHOD_NOT_ALLOWED', 'PUT /v1/leases');
    assertApiError(await http(node.url, '/v1/leases', { method: 'POST', body: '{"ttlSeconds":5}', headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'a grant without JSON');
  }
  assert.equal(ok<{ leases: unknown[] }>(await http(leader.url, '/v1/leases'), 'list').leases.length, before, 'no lease was granted');
});

test('the CLI: lease grant, ttl, keepalive --once, list and revoke, in text and --json', async () => {
  const endpoints = cluster.urls.join(',');
  const run = (...args: string[]) => runMain([...args, '--endpoints', endpoints]);
  const granted = await run('lease', 'grant', '30', '--json');
  assert.equal(granted.code, 0, granted.stderr);
  const { id, ttlSeconds } = JSON.parse(granted.stdout) as { id: number; ttlSeconds: number };
  assert.equal(ttlSeconds, 30);
  ok(await http(cluster.nodes[0]!.url, kv('cli/k', `?lease=${id}`), { method: 'PUT', body: 'v' }), 'put');
  const ttl = await run('lease', 'ttl', String(id), '--keys', '--json');
  assert.equal(ttl.code, 0, ttl.stderr);
  assert.deepEqual((JSON.parse(ttl.stdout) as { keys: string[] }).keys, ['cli/k']);
  const text = await run('lease', 'ttl', String(id));
  assert.match(text.stdout, new RegExp(`lease ${id}: \\d+ s left of 30`));
  const once = await run('lease', 'keepalive', String(id), '--once');
  assert.equal(once.code, 0, once.stderr);
  assert.match(once.stdout, new RegExp(`lease ${id} kept alive: TTL 30`));
  const listed = await run('lease', 'list', '--json');
  assert.ok((JSON.parse(listed.stdout) as { leases: { id: number }[] }).leases.some((l) => l.id === id));
  const revoked = await run('lease', 'revoke', String(id));
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, /revoked lease \d+: 1 key deleted/);
  const gone = await run('lease', 'ttl', String(id));
  assert.equal(gone.code, 3, 'not found exits 3');
  const usage = await run('lease', 'grant', 'soon');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /TTL/);
});

test('the client: lease() keeps a lease alive past several TTLs, reports its loss, and close() revokes it', { timeout: 60_000 }, async () => {
  const client = new RaftKvClient({ endpoints: cluster.urls, timeoutMs: 5000 });
  try {
    const held = await client.lease(1);
    assert.equal(held.ttlSeconds, MIN_TTL, 'raised to the minimum');
    await client.put('client/k', 'v', { lease: held.id });
    let isLost = false;
    void held.lost.then(() => (isLost = true));
    await new Promise((res) => setTimeout(res, 3 * MIN_TTL * 1000));
    assert.equal(isLost, false);
    assert.equal((await client.get('client/k'))?.lease, held.id, 'kept past three TTLs');
    const ttl = await client.leaseTimeToLive(held.id, { keys: true });
    assert.deepEqual(ttl.keys, ['client/k']);
    assert.ok((await client.leases()).leases.some((l) => l.id === held.id));
    await held.close();
    assert.equal(await client.get('client/k'), null, 'close() revoked it');
    await assert.rejects(client.leaseTimeToLive(held.id), NotFoundError);

    const other = await client.lease(MIN_TTL);
    await client.revokeLease(other.id);
    const lost = await Promise.race([other.lost, new Promise<null>((res) => setTimeout(() => res(null), 3 * MIN_TTL * 1000))]);
    assert.ok(lost instanceof LeaseLostError, 'the loss is reported');
    assert.equal(lost.code, 'LEASE_NOT_FOUND');
    await other.close();
    await assert.rejects(client.grantLease(5, { id: 0 }), BadRequestError);
    const fixed = await client.grantLease(5, { id: 777_001 });
    await assert.rejects(client.grantLease(5, { id: 777_001 }), LeaseExistsError);
    await client.revokeLease(fixed.id);
  } finally {
    client.close();
  }
});
