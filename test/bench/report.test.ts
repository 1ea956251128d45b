// The benchmark's arithmetic and its printed report (bench/lib/report.ts, stats.ts, workload.ts):
// nearest-rank percentiles, ratios and forwarding costs that say "-" rather than a number when
// an input is missing, and the machine-readable lines other tools grep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadResult } from '../../bench/lib/load.js';
import { ResultSet, forwardingCost, formatFinalLines, formatForwardingCost, formatLevel, formatTable, ratio } from '../../bench/lib/report.js';
import { percentile } from '../../bench/lib/stats.js';
import { benchKey, keyIndexOf, memberIndexFor, parseRoutings } from '../../bench/lib/workload.js';

function result(concurrency: number, opsPerSecond: number, extra: Partial<LoadResult> = {}): LoadResult {
  return {
    concurrency, ops: opsPerSecond * 5, seconds: 5, opsPerSecond, p50Ms: 1.5, p99Ms: 7.25, maxMs: 12.5,
    errors: 0, firstError: null, misrouted: 0, completed: opsPerSecond * 6, clientCpuUsPerOp: 40, ...extra,
  };
}

test('percentile is nearest-rank: the smallest value with at least q of the samples at or below it', () => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(sorted, 0.5), 50);
  assert.equal(percentile(sorted, 0.99), 99);
  assert.equal(percentile(sorted, 1), 100);
  assert.equal(percentile(Float64Array.of(3, 9), 0.99), 9);
  assert.equal(percentile(Float64Array.of(4), 0.5), 4);
  assert.ok(Number.isNaN(percentile(new Float64Array(0), 0.5)), 'no samples, no percentile');
});

test('ratio is raftkv ÷ etcd ops/s, and NaN when a side is missing or etcd did nothing', () => {
  assert.equal(ratio(result(16, 3000), result(16, 2000)), 1.5);
  assert.ok(Number.isNaN(ratio(result(16, 3000), undefined)));
  assert.ok(Number.isNaN(ratio(undefined, result(16, 2000))));
  assert.ok(Number.isNaN(ratio(result(16, 3000), result(16, 0))));
});

test('forwarding cost is 1 − spread ÷ leader, negative when spreading helps', () => {
  assert.equal(forwardingCost(result(16, 750), result(16, 1000)), 0.25);
  assert.equal(forwardingCost(result(16, 1000), result(16, 1000)), 0);
  assert.ok(forwardingCost(result(16, 1200), result(16, 1000)) < 0);
  assert.ok(Number.isNaN(forwardingCost(undefined, result(16, 1000))));
  assert.ok(Number.isNaN(forwardingCost(result(16, 750), result(16, 0))));
});

test('the final lines give every level and routing, then the forwarding costs, "-" for a system that did not run', () => {
  const both = new ResultSet();
  both.add('raftkv', 'spread', result(16, 1500));
  both.add('raftkv', 'leader', result(16, 2000, { p99Ms: 9.5 }));
  both.add('etcd', 'spread', result(16, 1000, { errors: 2 }));
  both.add('etcd', 'leader', result(16, 1600));
  assert.deepEqual(formatFinalLines([16], ['spread', 'leader'], both), [
    'level=16 routing=spread raftkv=1500 etcd=1000 ratio=1.50 raftkv_p99=7.25 etcd_p99=7.25 raftkv_errors=0 etcd_errors=2',
    'level=16 routing=leader raftkv=2000 etcd=1600 ratio=1.25 raftkv_p99=9.50 etcd_p99=7.25 raftkv_errors=0 etcd_errors=0',
    'level=16 forwarding_cost_raftkv=0.25 forwarding_cost_etcd=0.38',
  ]);

  const alone = new ResultSet();
  alone.add('raftkv', 'leader', result(1, 800));
  assert.deepEqual(formatFinalLines([1], ['leader'], alone), [
    'level=1 routing=leader raftkv=800 etcd=- ratio=- raftkv_p99=7.25 etcd_p99=- raftkv_errors=0 etcd_errors=-',
  ]);
  assert.equal(formatForwardingCost([1], ['leader'], alone), '', 'no forwarding cost without both routings');
});

test('the table has a row per level and routing, and etcd columns only when etcd ran', () => {
  const set = new ResultSet();
  for (const level of [1, 16]) {
    set.add('raftkv', 'spread', result(level, 100 * level));
    set.add('raftkv', 'leader', result(level, 120 * level));
  }
  const alone = formatTable([1, 16], ['spread', 'leader'], set).split('\n');
  assert.equal(alone.length, 2 + 4);
  assert.ok(!alone[0]!.includes('etcd'));
  assert.match(alone[2]!, /^\|\s+1 \|\s+spread \|\s+100 \|\s+1\.50 \|\s+7\.25 \|\s+12\.5 \|\s+0 \|$/);

  set.add('etcd', 'leader', result(16, 960));
  const both = formatTable([1, 16], ['spread', 'leader'], set).split('\n');
  assert.ok(both[0]!.includes('etcd ops/s') && both[0]!.includes('ratio'));
  assert.match(both[5]!, /\|\s+16 \|\s+leader \|.*\|\s+960 \|.*\|\s+2\.00 \|$/);
  assert.match(both[2]!, /\|\s+- \|\s+- \|\s+- \|\s+- \|\s+- \|\s+- \|$/, 'a missing etcd cell reads "-"');
});

test('a level line shows errors and misrouted answers so a bad run cannot pass for a good one', () => {
  assert.ok(!formatLevel('etcd', 'spread', result(4, 100)).includes('MISROUTED'));
  const bad = formatLevel('etcd', 'spread', result(4, 100, { errors: 3, firstError: 'deadline exceeded', misrouted: 7 }));
  assert.match(bad, /errors=3 \(first: deadline exceeded\)/);
  assert.match(bad, /MISROUTED=7/);
});

test('routing: spread aims client i at member i mod n counted from the one after the leader, leader at the leader', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((c) => memberIndexFor('spread', c, 3, 1)), [2, 0, 1, 2, 0]);
  assert.deepEqual([0, 1, 2].map((c) => memberIndexFor('spread', c, 3, 2)), [0, 1, 2]);
  assert.notEqual(memberIndexFor('spread', 0, 3, 0), 0, 'the one client of level 1 talks to a follower');
  assert.deepEqual([0, 1, 2, 3].map((c) => memberIndexFor('leader', c, 3, 1)), [1, 1, 1, 1]);
  assert.deepEqual(parseRoutings('spread, leader'), ['spread', 'leader']);
  assert.deepEqual(parseRoutings('leader'), ['leader']);
  assert.throws(() => parseRoutings('leaders'), /--routing takes spread, leader/);
  assert.throws(() => parseRoutings(''), /--routing/);
});

test('the first `keys` writes go to every key once, under names both systems share', () => {
  const seen = new Set(Array.from({ length: 10_000 }, (_, n) => keyIndexOf(n, 10_000)));
  assert.equal(seen.size, 10_000);
  assert.equal(benchKey(42), 'bench-000042');
});
