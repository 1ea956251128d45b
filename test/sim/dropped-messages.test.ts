// The core's message checks (src/raft/validate.ts) against legitimate traffic: seeded runs whose
// network delays, reorders, duplicates and loses messages, across crashes, partitions and
// membership changes. A correct server's messages, however late or repeated, are never counted
// as invalid or as a second leader of a term (§5.2): if they were, the checks would be wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DROP_REASONS, Raft, type DropReason } from '../../src/raft/index.js';
import { runSeed } from '../../src/sim/index.js';

test('§5.2 legitimate traffic, duplicated and reordered, is never dropped as invalid or as not from the leader', () => {
  const totals = Object.fromEntries(DROP_REASONS.map((k) => [k, 0])) as Record<DropReason, number>;
  const examples: string[] = [];
  // Every core of a run counts, including those a crash replaced: tally at the source.
  const countDrop = Raft.prototype.countDrop;
  Raft.prototype.countDrop = function (this: Raft, reason: DropReason): void {
    totals[reason]++;
    countDrop.call(this, reason);
  };
  try {
    for (const [nodes, seeds, timeMs] of [[3, 60, 30_000], [5, 60, 60_000]] as const) {
      for (let seed = 1; seed <= seeds; seed++) {
        const before = totals.invalid + totals['not-leader'];
        const result = runSeed({ seed, nodes, timeMs });
        assert.equal(result.violation, null, `seed ${seed} (${nodes} nodes): ${result.violation?.invariant}`);
        if (totals.invalid + totals['not-leader'] > before && examples.length < 5) {
          examples.push(`npm run sim -- --seed ${seed} --nodes ${nodes} --time ${timeMs / 1000}`);
        }
      }
    }
  } finally {
    Raft.prototype.countDrop = countDrop;
  }
  const report = `${JSON.stringify(totals)}; seeds: ${examples.join(', ')}`;
  assert.equal(totals.invalid, 0, `counted as invalid: ${report}`);
  assert.equal(totals['not-leader'], 0, `counted as not from the leader: ${report}`);
  assert.ok(totals['stale-sender'] > 0, 'answers from servers the leader let go do occur, and are told apart');
});
