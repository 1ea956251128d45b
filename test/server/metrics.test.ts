// /metrics on a real three-node cluster, read strictly (exposition.ts): every page is well formed,
// every counter only grows across scrapes under writes, the runtime metrics are there and sane,
// a failover is counted in raftkv_leader_changes_total and a write without a quorum in
// raftkv_proposals_failed_total, and every metric the Grafana dashboard (deploy/grafana/raftkv.json)
// queries exists in a scrape. A bad request to /metrics leaves the node serving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exchange, makeTempDir, pollUntil, ProcessCluster, removeTempDir, type ProcessNode } from '../../src/harness/index.js';
import { parseExposition, type Exposition } from './exposition.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
let root = '';
let cluster: ProcessCluster;

before(async () => {
  root = makeTempDir('metrics');
  cluster = new ProcessCluster({ root, extraArgs: ['--request-timeout-ms', '1500'] });
  await cluster.startFounders(3);
  await cluster.waitForReady();
});
after(async () => {
  await cluster?.destroy();
  removeTempDir(root);
});

async function scrape(node: ProcessNode): Promise<Exposition> {
  const reply = await exchange(node.url, '/metrics', { timeoutMs: 5000, security: null });
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(reply.body.toString('utf8'));
}

async function put(node: ProcessNode, key: string, value: string): Promise<number> {
  return (await exchange(node.url, `/v1/kv/${key}`, { method: 'PUT', body: Buffer.from(value), timeoutMs: 5000, security: null })).status;
}

function sum(e: Exposition, family: string, match: (series: string) => boolean = () => true): number {
  let total = 0;
  for (const [series, v] of e.samples) if (e.familyOf.get(series) === family && series.startsWith(family) && match(series)) total += v;
  return total;
}

const RENAMED_TO_COUNTERS = [
  'raftkv_proposals_total', 'raftkv_applied_entries_total', 'raftkv_snapshots_taken_total', 'raftkv_snapshots_installed_total', 'raftkv_wal_syncs_total',
  'raftkv_transport_messages_sent_total', 'raftkv_raft_messages_refused_total', 'raftkv_transport_connections_rejected_total', 'raftkv_transport_messages_dropped_total',
  'raftkv_peer_refused_total', 'raftkv_registry_invalid_records_total', 'raftkv_forwarded_proposals_total', 'raftkv_leader_changes_total', 'raftkv_proposals_failed_total',
  'raftkv_raft_follower_commits_total', 'raftkv_raft_stable_announced_total',
];

test('every page is strict exposition format; ever-growing values are counters and only grow under writes', { timeout: 60_000 }, async () => {
  const leader = await cluster.waitForLeader();
  const first = new Map<ProcessNode, Exposition>();
  for (const node of cluster.nodes) first.set(node, await scrape(node));
  for (let i = 0; i < 60; i++) assert.equal(await put(cluster.nodes[i % 3]!, `m${i}`, `value-${i}`), 200);
  for (const node of cluster.nodes) {
    const a = first.get(node)!;
    // A follower that forwarded none of the last writes learns their commit with the leader's
    // next message (up to a heartbeat later): scrape until it has applied them, for at most 5 s.
    const target = sum(a, 'raftkv_applied_entries_total') + 60;
    let b = await scrape(node);
    for (const until = Date.now() + 5000; sum(b, 'raftkv_applied_entries_total') < target && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 50));
      b = await scrape(node);
    }
    for (const name of RENAMED_TO_COUNTERS) assert.equal(b.types.get(name), 'counter', `${node.id}: ${name} is a counter`);
    for (const [name, type] of b.types) if (name.endsWith('_total')) assert.equal(type, 'counter', `${name} ends in _total but is a ${type}`);
    for (const [series, v] of a.samples) {
      const family = a.familyOf.get(series)!;
      const type = a.types.get(family);
      // Counters, and every series of a histogram (buckets, counts, and sums of non-negative values).
      if (type !== 'counter' && type !== 'histogram') continue;
      const later = b.samples.get(series);
      assert.ok(later !== undefined, `${node.id}: ${series} vanished between scrapes`);
      assert.ok(later >= v, `${node.id}: ${series} went from ${v} down to ${later}`);
    }
    assert.ok(sum(b, 'raftkv_applied_entries_total') >= target, `${node.id} applied the 60 writes`);
    assert.ok(sum(b, 'raftkv_http_requests_total') > sum(a, 'raftkv_http_requests_total'));
    if (node === leader) assert.ok(sum(b, 'raftkv_proposals_total') >= sum(a, 'raftkv_proposals_total') + 20, 'the leader proposed its own writes');
    else assert.ok(sum(b, 'raftkv_forwarded_proposals_total', (s) => s.includes('unit="commands"')) >= 20, `${node.id} forwarded its writes`);
  }
  // A follower that forwarded a write counts the leader's announced durable copy with its own
  // (3 voters: two copies are a majority) instead of waiting for the commit index.
  let ownCommits = 0;
  let announced = 0;
  for (const node of cluster.nodes) {
    const b = await scrape(node);
    ownCommits += sum(b, 'raftkv_raft_follower_commits_total') - sum(first.get(node)!, 'raftkv_raft_follower_commits_total');
    announced += sum(b, 'raftkv_raft_stable_announced_total') - sum(first.get(node)!, 'raftkv_raft_stable_announced_total');
  }
  assert.ok(announced > 0, 'the leader announced its durable index for forwarded writes');
  assert.ok(ownCommits > 0, 'followers committed by their own count');
});

test('runtime metrics: CPU, memory, heap, open fds, event-loop delay and utilization, GC pauses', { timeout: 30_000 }, async () => {
  const node = cluster.nodes[0]!;
  await scrape(node); // starts a fresh event-loop window
  for (let i = 0; i < 20; i++) await put(node, `r${i}`, 'x'.repeat(1000));
  const e = await scrape(node);
  const one = (name: string): number => {
    const v = e.samples.get(name);
    assert.ok(v !== undefined, `${name} is missing`);
    return v;
  };
  assert.equal(e.types.get('process_cpu_seconds_total'), 'counter');
  assert.ok(one('process_cpu_seconds_total') > 0);
  assert.ok(one('process_resident_memory_bytes') > 10 << 20, 'RSS above 10 MiB');
  assert.ok(one('nodejs_heap_size_used_bytes') > 0 && one('nodejs_heap_size_used_bytes') <= one('nodejs_heap_size_total_bytes'));
  assert.ok(one('nodejs_external_memory_bytes') >= 0);
  const start = one('process_start_time_seconds');
  assert.ok(start > Date.now() / 1000 - 600 && start <= Date.now() / 1000 + 1, 'started within the last 10 minutes');
  if (process.platform === 'linux') {
    assert.ok(one('process_open_fds') >= 5, 'sockets, WAL and the data dir lock are open');
    assert.ok(one('process_max_fds') >= one('process_open_fds'));
  }
  for (const g of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds']) {
    assert.equal(e.types.get(g), 'gauge');
    assert.ok(one(g) > 0 && one(g) < 5, `${g} = ${one(g)} s`);
  }
  assert.ok(one('nodejs_eventloop_lag_p50_seconds') <= one('nodejs_eventloop_lag_max_seconds'));
  const elu = one('nodejs_eventloop_utilization_ratio');
  assert.ok(elu > 0 && elu <= 1, `utilization ${elu}`);
  assert.equal(e.types.get('nodejs_gc_duration_seconds'), 'histogram');
  // Writes make garbage, and garbage makes collections: the histogram counts them (bounded: up
  // to ~40 MiB of values written, which no young generation holds without a scavenge).
  const gcCount = (x: Awaited<ReturnType<typeof scrape>>): number => sum(x, 'nodejs_gc_duration_seconds', (s) => s.startsWith('nodejs_gc_duration_seconds_count'));
  let seen = gcCount(e);
  for (let round = 0; seen === 0 && round < 20; round++) {
    for (let i = 0; i < 32; i++) await put(node, `g${i}`, 'y'.repeat(64 << 10));
    seen = gcCount(await scrape(node));
  }
  assert.ok(seen > 0, 'GC pauses were observed');
});

test('/metrics with a query, another method or a huge header is refused or answered; the node serves on', { timeout: 20_000 }, async () => {
  const node = cluster.nodes[1]!;
  const odd = await exchange(node.url, '/metrics?format=%ff%00&x=' + 'a'.repeat(4000), { timeoutMs: 5000, security: null });
  assert.ok(odd.status === 200 || (odd.status >= 400 && odd.status < 500), `status ${odd.status}`);
  const post = await exchange(node.url, '/metrics', { method: 'POST', body: Buffer.from('x'), timeoutMs: 5000, security: null });
  assert.ok(post.status >= 400 && post.status < 500, `POST /metrics: ${post.status}`);
  await scrape(node);
});

test('every metric the Grafana dashboard queries exists in a scrape, and docs/metrics.md lists every family with its type', { timeout: 20_000 }, async () => {
  const dashboard = JSON.parse(readFileSync(`${REPO}deploy/grafana/raftkv.json`, 'utf8')) as { title: string; panels: { title: string; type: string; targets?: { expr: string }[] }[]; templating?: { list: { query?: unknown }[] } };
  assert.equal(typeof dashboard.title, 'string');
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 12, `${panels.length} panels`);
  const e = await scrape(await cluster.waitForLeader());
  const histogramSeries = [...e.types].filter(([, t]) => t === 'histogram').flatMap(([name]) => ['_bucket', '_sum', '_count'].map((s) => `${name}${s}`));
  const known = new Set([...e.types.keys(), ...histogramSeries, ...[...e.samples.keys()].map((s) => s.replace(/\{.*$/, ''))]);
  const exprs = [...panels.flatMap((p) => {
    assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" queries nothing`);
    return p.targets!.map((t) => t.expr);
  }), ...(dashboard.templating?.list ?? []).flatMap((v) => (typeof v.query === 'string' ? [v.query] : typeof v.query === 'object' && v.query !== null && typeof (v.query as { query?: unknown }).query === 'string' ? [(v.query as { query: string }).query] : []))];
  const used = new Set(exprs.flatMap((x) => x.match(/\b(?:raftkv|process|nodejs)_[a-zA-Z0-9_]+/g) ?? []));
  assert.ok(used.size >= 20, `the dashboard uses ${used.size} metrics`);
  const missing = [...used].filter((m) => !known.has(m));
  assert.deepEqual(missing, [], 'metrics the dashboard queries but no node exports');
  // docs/metrics.md lists every family a node exports, with its type.
  const doc = readFileSync(`${REPO}docs/metrics.md`, 'utf8');
  const undocumented = [...e.types].filter(([name, type]) => !new RegExp(`^\\| \`${name}\` \\| ${type} \\|`, 'm').test(doc)).map(([name, type]) => `${name} (${type})`);
  assert.deepEqual(undocumented, [], 'families missing from docs/metrics.md (or with another type there)');
});

test('a failover is counted in raftkv_leader_changes_total; writes without a quorum in raftkv_proposals_failed_total', { timeout: 90_000 }, async () => {
  const oldLeader = await cluster.waitForLeader();
  const survivors = cluster.nodes.filter((n) => n !== oldLeader);
  const before = new Map<ProcessNode, number>();
  for (const n of survivors) before.set(n, sum(await scrape(n), 'raftkv_leader_changes_total'));
  for (const n of survivors) assert.ok(before.get(n)! >= 1, `${n.id} has seen the first leader`);
  await oldLeader.stop('SIGKILL');
  cluster.forget(oldLeader);
  const next = await cluster.waitForLeader(30_000);
  await pollUntil('both survivors to count the new leader', 10_000, async () => {
    for (const n of survivors) if (sum(await scrape(n), 'raftkv_leader_changes_total') < before.get(n)! + 1) return undefined;
    return true;
  });
  // The last two: stop the follower; the leader loses its quorum and its writes fail.
  const other = survivors.find((n) => n !== next)!;
  await other.stop('SIGKILL');
  cluster.forget(other);
  const failedBefore = sum(await scrape(next), 'raftkv_proposals_failed_total');
  assert.notEqual(await put(next, 'lost-quorum', 'x'), 200);
  const after = await scrape(next);
  assert.ok(sum(after, 'raftkv_proposals_failed_total') > failedBefore, 'the failed write was counted');
  assert.ok([...after.samples.keys()].some((s) => /^raftkv_proposals_failed_total\{reason="(TIMEOUT|NO_LEADER)"\}$/.test(s)));
});
