// The `raftkv` command line as an operator meets it (API.md "Command line"): bad flags fail
// fast with one line and write nothing; flags also come from RAFTKV_* variables; SIGTERM exits 0
// and a restart trusts the data dir; a WAL corrupted mid-segment refuses to start, naming the
// file and offset; and the client commands work against a running cluster.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, freePorts, makeTempDir, pollUntil, removeTempDir, runMain, TestCluster, TestNode, type RunResult } from './harness.js';
import { http, type KvRecordJson, type NodeStatus } from './http.js';

let root = '';
let cluster: TestCluster | undefined;
before(() => {
  root = makeTempDir('cli');
});
after(async () => {
  await cluster?.destroy();
  removeTempDir(root);
});

function assertOneLine(run: RunResult, what: string): string {
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: stderr must be one line, got: ${run.stderr}`);
  return lines[0]!;
}

test('serve with a missing or bad flag exits non-zero with one line naming the flag, and writes nothing', { timeout: 60_000 }, async () => {
  const [peer, client] = await freePorts(2);
  const self = `127.0.0.1:${peer}`;
  const valid: Record<string, string> = {
    id: 'n1', 'peer-addr': self, 'client-addr': `127.0.0.1:${client}`, 'initial-cluster': `n1=${self},n2=127.0.0.1:1`,
  };
  const cases: { what: string; flag: string; change: Record<string, string | null>; env?: Record<string, string>; extra?: string[] }[] = [
    { what: 'missing --data-dir', flag: '--data-dir', change: { 'data-dir': null } },
    { what: 'missing --id', flag: '--id', change: { id: null } },
    { what: 'missing --peer-addr', flag: '--peer-addr', change: { 'peer-addr': null } },
    { what: 'missing --client-addr', flag: '--client-addr', change: { 'client-addr': null } },
    { what: 'missing --initial-cluster on a new node', flag: '--initial-cluster', change: { 'initial-cluster': null } },
    { what: 'a bad --id', flag: '--id', change: { id: 'n 1' } },
    { what: '--peer-addr without a port', flag: '--peer-addr', change: { 'peer-addr': 'localhost' } },
    { what: '--client-addr with a port out of range', flag: '--client-addr', change: { 'client-addr': '127.0.0.1:70000' } },
    { what: '--heartbeat-ms not a number', flag: '--heartbeat-ms', change: { 'heartbeat-ms': 'fast' } },
    { what: '--election-ms of 0', flag: '--election-ms', change: { 'election-ms': '0' } },
    { what: '--election-ms not above twice the heartbeat', flag: '--election-ms', change: { 'heartbeat-ms': '100', 'election-ms': '200' } },
    { what: '--snapshot-entries below its minimum', flag: '--snapshot-entries', change: { 'snapshot-entries': '5' } },
    { what: '--snapshot-catch-up-entries negative', flag: '--snapshot-catch-up-entries', change: { 'snapshot-catch-up-entries': '-1' } },
    { what: '--snapshot-log-percent not a whole number', flag: '--snapshot-log-percent', change: { 'snapshot-log-percent': '12.5' } },
    { what: '--snapshot-log-percent above its maximum', flag: '--snapshot-log-percent', change: { 'snapshot-log-percent': '10001' } },
    { what: '--snapshot-idle-ms negative', flag: '--snapshot-idle-ms', change: { 'snapshot-idle-ms': '-1' } },
    { what: '--snapshot-stagger neither on nor off', flag: '--snapshot-stagger', change: { 'snapshot-stagger': 'yes' } },
    { what: '--snapshot-log-bytes below its minimum (1 MiB)', flag: '--snapshot-log-bytes', change: { 'snapshot-log-bytes': '1000' } },
    { what: '--request-timeout-ms fractional', flag: '--request-timeout-ms', change: { 'request-timeout-ms': '1.5' } },
    { what: '--body-timeout-ms below its minimum', flag: '--body-timeout-ms', change: { 'body-timeout-ms': '10' } },
    { what: '--max-pending of 0', flag: '--max-pending', change: { 'max-pending': '0' } },
    { what: '--max-key-bytes too large', flag: '--max-key-bytes', change: { 'max-key-bytes': '999999999' } },
    { what: '--max-value-bytes empty', flag: '--max-value-bytes', change: { 'max-value-bytes': '' } },
    { what: 'an unknown --log-level', flag: '--log-level', change: { 'log-level': 'loud' } },
    { what: '--initial-cluster without this node', flag: '--initial-cluster', change: { 'initial-cluster': 'n2=127.0.0.1:1,n3=127.0.0.1:2' } },
    { what: '--initial-cluster giving this node another address', flag: '--initial-cluster', change: { 'initial-cluster': 'n1=127.0.0.1:1' } },
    { what: '--initial-cluster malformed', flag: '--initial-cluster', change: { 'initial-cluster': 'n1@127.0.0.1:1' } },
    { what: '--initial-cluster naming a node twice', flag: '--initial-cluster', change: { 'initial-cluster': `n1=${self},n1=${self}` } },
    { what: 'an unknown --auto-compaction-mode', flag: '--auto-compaction-mode', change: { 'auto-compaction-mode': 'hourly', 'auto-compaction-retention': '1' } },
    { what: '--auto-compaction-mode without a retention', flag: '--auto-compaction-retention', change: { 'auto-compaction-mode': 'revision' } },
    { what: '--auto-compaction-retention not a count in revision mode', flag: '--auto-compaction-retention', change: { 'auto-compaction-mode': 'revision', 'auto-compaction-retention': '1h' } },
    { what: '--auto-compaction-retention not a duration in periodic mode', flag: '--auto-compaction-retention', change: { 'auto-compaction-retention': 'soon' } },
    { what: '--max-watchers of 0', flag: '--max-watchers', change: { 'max-watchers': '0' } },
    { what: '--watch-progress-ms not a number', flag: '--watch-progress-ms', change: { 'watch-progress-ms': 'often' } },
    { what: '--etcd-addr without a port', flag: '--etcd-addr', change: { 'etcd-addr': '127.0.0.1' } },
    { what: '--etcd-addr on the client port', flag: '--etcd-addr', change: { 'etcd-addr': valid['client-addr']! } },
    { what: 'an unknown flag', flag: '--bogus', change: {}, extra: ['--bogus', '1'] },
    { what: 'a bad RAFTKV_HEARTBEAT_MS from the environment', flag: 'heartbeat-ms', change: {}, env: { RAFTKV_HEARTBEAT_MS: 'soon' } },
  ];
  const runCase = async (c: (typeof cases)[number], i: number): Promise<void> => {
    const cwd = join(root, `usage-${i}`);
    mkdirSync(cwd);
    const flags: Record<string, string | null> = { ...valid, 'data-dir': join(cwd, 'data'), ...c.change };
    const args = ['serve', ...Object.entries(flags).flatMap(([k, v]) => (v === null ? [] : [`--${k}`, v])), ...(c.extra ?? [])];
    const run = await runMain(args, { cwd, env: childEnv(c.env), timeoutMs: 10_000 });
    assert.notEqual(run.code, 0, `${c.what}: exited 0`);
    assert.equal(run.code, 2, `${c.what}: a usage error exits 2, got ${run.code} (${run.stderr})`);
    const line = assertOneLine(run, c.what);
    assert.ok(line.includes(c.flag), `${c.what}: "${line}" does not name ${c.flag}`);
    assert.equal(run.stdout, '', `${c.what}: nothing may be logged before the flags are valid`);
    assert.deepEqual(readdirSync(cwd), [], `${c.what}: the failed start wrote ${readdirSync(cwd).join(', ')}`);
  };
  // A few at a time: each is a short-lived process.
  for (let i = 0; i < cases.length; i += 4) await Promise.all(cases.slice(i, i + 4).map((c, j) => runCase(c, i + j)));
});

test('serve takes every flag from RAFTKV_* variables alone, and SIGTERM exits 0', { timeout: 30_000 }, async () => {
  const [peer, client] = await freePorts(2);
  const dataDir = join(root, 'env-node');
  const node = new TestNode('solo', `127.0.0.1:${peer}`, `127.0.0.1:${client}`, dataDir, join(root, 'env-node.log'));
  node.start(['serve'], childEnv({
    RAFTKV_ID: node.id, RAFTKV_DATA_DIR: dataDir, RAFTKV_PEER_ADDR: node.peerAddr, RAFTKV_CLIENT_ADDR: node.clientAddr,
    RAFTKV_INITIAL_CLUSTER: `solo=${node.peerAddr}`, RAFTKV_HEARTBEAT_MS: '50', RAFTKV_ELECTION_MS: '300', RAFTKV_LOG_LEVEL: 'warn',
  }));
  try {
    const status = await pollUntil('the single node to lead', 10_000, async () => {
      const s = await node.status();
      return s?.role === 'leader' ? s : undefined;
    });
    assert.equal(status.id, 'solo');
    assert.equal((await http(node.url, '/v1/kv/env', { method: 'PUT', body: 'from env' })).status, 200);
    assert.equal((await http(node.url, '/v1/kv/env')).json<KvRecordJson>().value, 'from env');
    assert.ok(existsSync(join(dataDir, 'wal')), 'RAFTKV_DATA_DIR was not used');
  } finally {
    if (node.isRunning) assert.deepEqual(await node.stop('SIGTERM'), { code: 0, signal: null });
  }
  assert.equal(node.stderr, '');
});

async function putKeys(leader: TestNode, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await http(leader.url, `/v1/kv/${prefix}${i}`, { method: 'PUT', body: `${prefix}-value-${i}` });
    assert.equal(r.status, 200, r.text);
  }
}

async function assertHasKeys(node: TestNode, consistency: string, expected: Record<string, string>): Promise<void> {
  const r = await http(node.url, `/v1/kv?prefix=k&limit=10000&consistency=${consistency}`);
  assert.equal(r.status, 200, r.text);
  const got = Object.fromEntries(r.json<{ items: KvRecordJson[] }>().items.map((i) => [i.key, i.value]));
  assert.deepEqual(got, expected, `${node.id} (${consistency})`);
}

test('SIGTERM exits 0; a restarted node trusts its data dir over a different --initial-cluster; a full restart keeps the data', { timeout: 60_000 }, async () => {
  cluster = await TestCluster.start({ size: 3, name: 'cli-cluster' });
  const c = cluster;
  const expected: Record<string, string> = {};
  const leader = await c.waitForLeader();
  await putKeys(leader, 'ka', 40);
  for (let i = 0; i < 40; i++) expected[`ka${i}`] = `ka-value-${i}`;

  const startedStop = Date.now();
  assert.deepEqual(await leader.stop('SIGTERM', 8000), { code: 0, signal: null }, `SIGTERM of the leader: ${leader.stderr}`);
  assert.ok(Date.now() - startedStop < 5000, 'a clean stop took more than 5 s');
  const next = await c.waitForLeader();
  await putKeys(next, 'kb', 40);
  for (let i = 0; i < 40; i++) expected[`kb${i}`] = `kb-value-${i}`;

  // This --initial-cluster would be refused on a new node: it does not even name this one.
  c.startNode(leader, ['--initial-cluster', 'zz=127.0.0.1:1']);
  await c.waitApplied(leader, (await next.status())!.commitIndex);
  await assertHasKeys(leader, 'stale', expected);
  const members = (await http(leader.url, '/v1/members')).json<{ members: NodeStatus['members'] }>().members;
  assert.deepEqual(members.map((m) => [m.id, m.peerAddr]).sort(), c.nodes.map((n) => [n.id, n.peerAddr]));

  for (const n of c.nodes) assert.deepEqual(await n.stop('SIGTERM', 8000), { code: 0, signal: null }, `SIGTERM of ${n.id}: ${n.stderr}`);
  for (const n of c.nodes) c.startNode(n);
  const restarted = await c.waitForReady();
  await assertHasKeys(restarted, 'linearizable', expected);
  for (const n of c.nodes) assert.equal(n.stderr, '', `${n.id} wrote to stderr`);
});

test('a WAL corrupted in the middle of a segment refuses to start, naming the file and offset', { timeout: 30_000 }, async () => {
  const c = cluster!;
  const victim = c.nodes.find((n) => n.isRunning)!;
  assert.deepEqual(await victim.stop('SIGTERM'), { code: 0, signal: null });
  const walDir = join(victim.dataDir, 'wal');
  const segments = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort((a, b) => statSync(join(walDir, b)).size - statSync(join(walDir, a)).size);
  assert.ok(segments.length > 0, `no WAL segment in ${walDir}`);
  const file = join(walDir, segments[0]!);
  const bytes = readFileSync(file);
  assert.ok(bytes.length > 4096, `the segment holds only ${bytes.length} bytes`);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = bytes[middle]! ^ 0xff;
  writeFileSync(file, bytes);

  const run = await runMain(c.serveArgs(victim), { timeoutMs: 15_000 });
  assert.notEqual(run.code, 0, 'a node with a corrupt WAL must not start');
  assert.equal(run.signal, null);
  const line = assertOneLine(run, 'corrupt WAL');
  assert.ok(line.includes(segments[0]!), `"${line}" does not name the file ${segments[0]}`);
  const offset = /offset (\d+)/.exec(line);
  assert.ok(offset !== null, `"${line}" does not name the offset`);
  assert.ok(Number(offset[1]) > 0 && Number(offset[1]) <= middle, `offset ${offset[1]} is not at or before the damaged byte ${middle}`);
  assert.deepEqual(readFileSync(file), bytes, 'refusing to start must leave the damaged file as it was');
});

test('raftkv put/get/del/status against the running cluster, with --endpoints and --json', { timeout: 60_000 }, async () => {
  const c = cluster!;
  // One endpoint (the node with the corrupt WAL) is down: the client must go around it.
  const endpoints = c.urls.join(',');
  const cli = (...args: string[]): Promise<RunResult> => runMain([...args, '--endpoints', endpoints], { timeoutMs: 20_000 });

  const put = await cli('put', 'cli/a', 'hello world');
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stdout, /^OK \(index \d+, revision \d+\)\n$/);
  const putJson = await cli('put', 'cli/b', 'second', '--json');
  assert.equal(putJson.code, 0, putJson.stderr);
  const { index, revision } = JSON.parse(putJson.stdout) as { index: number; revision: number };
  assert.ok(Number.isSafeInteger(index) && index > 0);

  const get = await cli('get', 'cli/a');
  assert.deepEqual([get.code, get.stdout], [0, 'hello world\n'], get.stderr);
  const getJson = await cli('get', 'cli/b', '--json');
  assert.equal(getJson.code, 0, getJson.stderr);
  assert.deepEqual(JSON.parse(getJson.stdout), { key: 'cli/b', value: 'second', createIndex: index, modIndex: index, version: 1, createRevision: revision, modRevision: revision, lease: 0 });
  const viaHttp = await http(c.running()[0]!.url, '/v1/kv/cli%2Fb');
  assert.equal(viaHttp.json<KvRecordJson>().value, 'second', 'the CLI write is visible over HTTP');

  const missing = await cli('get', 'cli/missing', '--json');
  assert.equal(missing.code, 3);
  assert.equal((JSON.parse(missing.stderr) as { error: { code: string } }).error.code, 'NOT_FOUND');
  const cas = await cli('put', 'cli/a', 'x', '--prev-value', 'not this');
  assert.equal(cas.code, 4, cas.stderr);
  assert.equal((await cli('get', 'cli/a')).stdout, 'hello world\n', 'a failed compare wrote nothing');

  const del = await cli('del', 'cli/a', '--json');
  assert.equal(del.code, 0, del.stderr);
  assert.equal((JSON.parse(del.stdout) as { deleted: boolean }).deleted, true);
  assert.equal((await cli('get', 'cli/a')).code, 3);

  const status = await cli('status', '--json');
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as { endpoint: string; status?: { id: string; role: string } }[];
  assert.deepEqual(rows.map((r) => r.endpoint), c.urls);
  assert.deepEqual(rows.map((r) => r.status?.id ?? null), c.nodes.map((n) => (n.isRunning ? n.id : null)));
  assert.equal(rows.filter((r) => r.status?.role === 'leader').length, 1);

  const fromEnv = await runMain(['get', 'cli/b'], { env: childEnv({ RAFTKV_ENDPOINTS: endpoints }), timeoutMs: 20_000 });
  assert.deepEqual([fromEnv.code, fromEnv.stdout], [0, 'second\n'], fromEnv.stderr);
});

test('raftkv status: exit 0 with a quorum; with only one of three nodes left, every row still full and exit 1 with one line', { timeout: 60_000 }, async () => {
  const c = cluster!;
  const endpoints = c.urls.join(',');
  const withQuorum = await pollUntil('status to see a quorum', 15_000, async () => {
    const r = await runMain(['status', '--endpoints', endpoints], { timeoutMs: 20_000 });
    return r.code === 0 ? r : undefined;
  });
  assert.equal(withQuorum.stderr, '');
  for (const n of c.running().slice(1)) assert.deepEqual(await n.stop('SIGTERM', 8000), { code: 0, signal: null });
  assert.equal(c.running().length, 1);
  const noQuorum = await pollUntil('status to see no quorum', 20_000, async () => {
    const r = await runMain(['status', '--endpoints', endpoints], { timeoutMs: 20_000 });
    return r.code !== 0 ? r : undefined;
  });
  assert.equal(noQuorum.code, 1);
  assert.match(assertOneLine(noQuorum, 'status without quorum'), /^error: no quorum: none of the 3 endpoints is ready/);
  const lines = noQuorum.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4, noQuorum.stdout);
  const readyAt = lines[0]!.indexOf('READY');
  for (const line of lines.slice(1)) assert.equal(line.slice(readyAt, readyAt + 3), 'no ', `a broken row: ${line}`);
  assert.equal(lines.filter((l) => /\sunreachable\s/.test(l)).length, 2);
});
