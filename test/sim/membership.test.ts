// Membership changes among the faults (thesis §4): seeded runs in which servers are added as
// learners, promoted, removed (the leader too), replaced one or two at a time, leadership is
// handed to random targets and removed servers are decommissioned, while crashes, partitions,
// loss and slow disks go on. Every invariant is checked after every step, the configuration
// checks included; after healing, the final configuration must elect a leader and commit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { runSeeds, type SimResult } from '../../src/sim/index.js';

const WORKERS = Math.min(2, availableParallelism());

async function campaign(nodes: number, first: number, count: number, timeMs: number, membershipRate = 1): Promise<SimResult[]> {
  const seeds = Array.from({ length: count }, (_, i) => first + i);
  const results = await runSeeds(seeds, { nodes, timeMs, membershipRate }, WORKERS);
  const failed = results.filter((r) => r.violation !== null);
  const rate = membershipRate === 1 ? '' : ` --membership ${membershipRate}`;
  const report = failed
    .map((r) => `seed ${r.seed}: ${r.violation!.invariant} at ${r.violation!.timeMs.toFixed(3)} ms: ${r.violation!.details.split('\n')[0]}\n  replay: npm run sim -- --seed ${r.seed} --nodes ${nodes} --time ${timeMs / 1000}${rate} --verbose`)
    .join('\n');
  assert.deepEqual(failed.map((r) => r.seed), [], `${failed.length} of ${count} seeds violated an invariant:\n${report}`);
  return results;
}

function total(results: readonly SimResult[], f: (r: SimResult) => number): number {
  return results.reduce((s, r) => s + f(r), 0);
}

function assertChangesHappened(results: readonly SimResult[]): void {
  const committed = total(results, (r) => r.membershipCommitted);
  assert.ok(committed > 2 * results.length, `membership changes committed: ${committed}`);
  assert.ok(total(results, (r) => r.membershipRefused) > 0, 'some requests were refused');
  assert.ok(total(results, (r) => r.serversAdded) > results.length, 'new, empty servers joined');
  assert.ok(total(results, (r) => r.serversStopped) > 0, 'removed servers were decommissioned');
  assert.ok(total(results, (r) => r.transfersSucceeded) > 0, 'leadership transfers succeeded');
  assert.ok(total(results, (r) => r.seamSplits) > 0, 'partitions cut along the joint seam');
  assert.ok(results.every((r) => r.acknowledged > 0 && r.recoveryMs >= 0), 'every run made progress and recovered');
}

test('3 founding nodes, 120 seeds x 60 s with membership changes: no invariant violated, changes committed', async () => {
  assertChangesHappened(await campaign(3, 10_001, 120, 60_000));
});

test('5 founding nodes, 100 seeds x 60 s with membership changes: no invariant violated, changes committed', async () => {
  assertChangesHappened(await campaign(5, 20_001, 100, 60_000));
});

test('4x the membership rate, 3 and 5 founding nodes, 40 seeds x 30 s each: no invariant violated', async () => {
  assertChangesHappened(await campaign(3, 30_001, 40, 30_000, 4));
  assertChangesHappened(await campaign(5, 40_001, 40, 30_000, 4));
});
