// The coordination benchmark's measures (bench/lib/coordination.ts) at tiny sizes, for about a
// second each, against a real 3-node raftkv cluster and, when etcd is installed, a real 3-member
// etcd cluster: each must measure something, and find every watch event delivered once and in
// order, no two lock holders at once and fencing tokens that only grow. Proves the benchmark
// runs; its numbers mean nothing here.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { etcdCoordination } from '../../bench/grpc/etcd-coordination.js';
import type { CoordinationTarget } from '../../bench/lib/coordination-target.js';
import { runKeepAlives, runLockHandoffs, runWatchFanout } from '../../bench/lib/coordination.js';
import { findEtcd, startEtcd } from '../../bench/lib/etcd-cluster.js';
import { Resources } from '../../bench/lib/processes.js';
import { startRaftkv } from '../../bench/lib/raftkv-cluster.js';
import { raftkvCoordination } from '../../bench/lib/raftkv-coordination.js';
import { raftkvMembers } from '../../bench/lib/raftkv-load.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const res = new Resources();
after(() => res.releaseAll(2000));

async function measureTiny(t: CoordinationTarget): Promise<void> {
  for (const rate of [0, 50]) {
    const w = await runWatchFanout(t, { watchers: 6, warmupMs: 0, durationMs: 600, valueBytes: 16, rate, drainMs: 5000 });
    assert.equal(w.firstProblem, null, `${t.system} watch: ${w.firstProblem}`);
    assert.ok(w.eventsPerSecond > 0 && w.writesPerSecond > 0, `${t.system} watch at rate ${rate}: nothing measured`);
    assert.ok(w.expected > 0 && w.delivered === w.expected, `${t.system} watch: ${w.delivered} of ${w.expected} events delivered`);
    assert.equal(w.outOfOrder, 0);
    assert.ok(w.lagP50Ms >= 0 && w.lagP50Ms <= w.lagP99Ms, `${t.system} watch lag out of order: ${w.lagP50Ms} ${w.lagP99Ms}`);
  }
  const k = await runKeepAlives(t, { leases: 5, clients: 2, routing: 'spread', ttlSeconds: 60, warmupMs: 100, durationMs: 600 });
  assert.equal(k.errors, 0, `${t.system} keep-alive: ${k.firstError}`);
  assert.ok(k.ops > 0, `${t.system}: no keep-alive completed`);
  assert.ok(k.p50Ms > 0 && k.p50Ms <= k.p99Ms);
  const l = await runLockHandoffs(t, { contenders: 3, routing: 'spread', ttlSeconds: 60, warmupMs: 100, durationMs: 800 });
  assert.equal(l.errors, 0, `${t.system} lock: ${l.firstProblem}`);
  assert.ok(l.handoffsPerSecond > 0 && l.acquisitions > 1, `${t.system}: no lock handoff`);
  assert.equal(l.overlaps, 0, `${t.system}: two holders at once (${l.firstProblem})`);
  assert.equal(l.fencingViolations, 0, `${t.system}: a fencing token went backwards (${l.firstProblem})`);
}

test('raftkv: watch fan-out, keep-alives and lock handoffs measure something and see no violation', { timeout: 60_000 }, async () => {
  const sut = await startRaftkv(res, { mainPath: MAIN, nodes: 3, profileDir: null, leaderTimeoutMs: 20_000 });
  try {
    const members = await raftkvMembers(sut.leaderUrl);
    const t = raftkvCoordination(members, members.findIndex((m) => m.id === sut.leaderName));
    try {
      await measureTiny(t);
    } finally {
      t.close();
    }
  } finally {
    await sut.stop();
  }
});

test('etcd: the same measures over gRPC (skipped without etcd)', { timeout: 60_000 }, async (tc: TestContext) => {
  const binary = findEtcd(process.env['ETCD_BIN']);
  if (binary === null) {
    tc.skip('etcd is not installed (no etcd on PATH, no /usr/bin/etcd)');
    return;
  }
  const etcd = await startEtcd(res, { binary, members: 3, leaderTimeoutMs: 15_000 });
  try {
    const t = etcdCoordination(etcd.members, etcd.leaderIndex);
    try {
      await measureTiny(t);
    } finally {
      t.close();
    }
  } finally {
    await etcd.stop();
  }
});
