// The core's message checks (src/raft/validate.ts) against legitimate traffic: seeded runs whose
// network delays, reorders, duplicates and loses messages, across crashes, partitions and
// membership changes. A correct server's messages, however late or repeated, are never counted
// as invalid or as a second leader of a term (§5.2): if they were, the checks would be wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DROP_REASONS, type DropReason } from '../../src/raft/index.js';
import { Simulation } from '../../src/sim/index.js';

test('§5.2 legitimate traffic, duplicated and reordered, is never dropped as invalid or as not from the leader', () => {
  const totals = Object.fromEntries(DROP_REASONS.map((k) => [k, 0])) as Record<DropReason, number>;
  for (const [nodes, seeds] of [[3, 15], [5, 15]] as const) {
    for (let seed = 1; seed <= seeds; seed++) {
      const sim = new Simulation({ seed, nodes, timeMs: 20_000 });
      const result = sim.run();
      assert.equal(result.violation, null, `seed ${seed} (${nodes} nodes): ${result.violation?.invariant}`);
      // The cores alive at the end (a restarted server's earlier core is gone with its counters).
      for (const node of sim.nodes) {
        if (node.core === null) continue;
        for (const k of DROP_REASONS) totals[k] += node.core.droppedMessages[k];
      }
    }
  }
  assert.equal(totals.invalid, 0, `counted as invalid: ${JSON.stringify(totals)}`);
  assert.equal(totals['not-leader'], 0, `counted as not from the leader: ${JSON.stringify(totals)}`);
});
