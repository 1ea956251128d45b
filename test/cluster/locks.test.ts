// Locks and elections on a real 3-node cluster (API.md "Coordination"): the typed client's lock()
// through different nodes gives mutual exclusion and growing fencing tokens; a holder killed
// without releasing (its lease no longer renewed) hands the lock on within a TTL; an election's
// leader, proclaim, resign and the observe stream; and the CLI: `raftkv lock NAME -- COMMAND`
// runs the command holding the lock with its token in the environment, `raftkv elect`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LockHeldError, RaftKvClient } from '../../src/client/index.js';
import { childEnv, pollUntil, runMain, TestCluster } from './harness.js';
import { http } from './http.js';

let cluster: TestCluster;
before(async () => {
  // The minimum lease TTL is ceil(1.5 × election) seconds: 1 s here.
  cluster = await TestCluster.start({ size: 3, name: 'locks', electionMs: 500, heartbeatMs: 50 });
});
after(async () => {
  await cluster?.destroy();
});

const clientOf = (i: number): RaftKvClient => new RaftKvClient({ endpoints: [cluster.nodes[i]!.url], timeoutMs: 20_000 });

test('lock() through three nodes: one holder at a time, fencing tokens that only grow', async () => {
  const clients = [0, 1, 2].map(clientOf);
  let holding = 0;
  let most = 0;
  const tokens: number[] = [];
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < 4; i++) {
        const held = await c.lock('job', { ttlSeconds: 5 });
        holding++;
        most = Math.max(most, holding);
        tokens.push(held.token);
        await new Promise((r) => setTimeout(r, 20));
        holding--;
        await held.release();
      }
    }),
  );
  assert.equal(most, 1, 'never two holders at once');
  assert.equal(tokens.length, 12);
  assert.deepEqual(tokens, [...tokens].sort((a, b) => a - b), 'tokens grow in the order the lock was held');
  assert.equal(new Set(tokens).size, 12);
  clients.forEach((c) => c.close());
});

test('wait: false fails at once with LockHeldError; a holder that stops renewing lets go within its TTL', async () => {
  const a = clientOf(0);
  const b = clientOf(1);
  // A lease kept alive by a separate process that we kill: the holder "dies" without releasing.
  const lease = await a.grantLease(1);
  const res = await http(cluster.nodes[0]!.url, '/v1/locks/crash', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lease: lease.id }) });
  assert.equal(res.status, 200, res.text);
  const token = res.json<{ revision: number }>().revision;
  await assert.rejects(b.lock('crash', { wait: false, ttlSeconds: 5 }), (err: unknown) => err instanceof LockHeldError);
  const started = Date.now();
  const next = await b.lock('crash', { ttlSeconds: 5 });
  const waited = Date.now() - started;
  assert.ok(next.token > token);
  assert.ok(waited < 6000, `the lock passed on ${waited} ms after the holder stopped renewing`);
  await next.release();
  a.close();
  b.close();
});

test('an election: campaign, leader, proclaim, observe, resign hands over', async () => {
  const a = clientOf(0);
  const b = clientOf(2);
  const first = await a.campaign('svc', 'a:1', { ttlSeconds: 5 });
  const observed: string[] = [];
  const ctl = new AbortController();
  const observer = fetch(`${cluster.nodes[1]!.url}/v1/elections/svc/observe`, { signal: ctl.signal }).then(async (r) => {
    assert.equal(r.status, 200);
    const decoder = new TextDecoder();
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      for (const line of decoder.decode(chunk).split('\n')) if (line.startsWith('data: ')) observed.push(line.slice(6));
    }
  }).catch(() => undefined);
  await pollUntil('the observer connected and saw the leader', 5000, async () => (observed.length > 0 ? true : undefined));
  const second = b.campaign('svc', 'b:1', { ttlSeconds: 5 });
  assert.equal(new TextDecoder().decode((await a.electionLeader('svc'))!.value), 'a:1');
  await first.proclaim('a:2');
  await pollUntil('the proclamation observed', 5000, async () => (observed.some((o) => o.includes('"a:2"')) ? true : undefined));
  await first.resign();
  const leading = await second;
  assert.equal(new TextDecoder().decode((await a.electionLeader('svc'))!.value), 'b:1');
  await pollUntil('the new leader observed', 5000, async () => (observed.some((o) => o.includes('"b:1"')) ? true : undefined));
  assert.ok(observed[0]!.includes('"a:1"'), `the stream starts with the leader then: ${observed[0]}`);
  await leading.resign();
  await pollUntil('no leader observed', 5000, async () => (observed.at(-1) === '{"leader":null}' ? true : undefined));
  ctl.abort();
  await observer;
  a.close();
  b.close();
});

test('raftkv lock NAME -- COMMAND runs the command holding the lock, with its key and token', async () => {
  const endpoints = cluster.urls.join(',');
  const run = await runMain(['lock', 'cli-lock', '--ttl', '3', '--endpoints', endpoints, '--', process.execPath, '-e', 'console.log(process.env.RAFTKV_LOCK_KEY, process.env.RAFTKV_LOCK_TOKEN); process.exit(7)'], { env: childEnv(), timeoutMs: 20_000 });
  assert.equal(run.code, 7, `the command's exit code: ${run.stderr}`);
  const [key, token] = run.stdout.trim().split(' ');
  assert.match(key!, /^cli-lock\/[0-9a-f]+$/);
  assert.ok(Number(token) > 0);
  const left = await http(cluster.nodes[0]!.url, `/v1/kv?prefix=${encodeURIComponent('cli-lock/')}`);
  assert.deepEqual(left.json<{ items: unknown[] }>().items, [], 'released after the command');
  const usage = await runMain(['lock', '--endpoints', endpoints], { env: childEnv(), timeoutMs: 10_000 });
  assert.equal(usage.code, 2);
  const elect = await runMain(['elect', 'cli-elect', '--listen', 'extra', '--endpoints', endpoints], { env: childEnv(), timeoutMs: 10_000 });
  assert.equal(elect.code, 2, 'elect --listen takes NAME alone');
});
