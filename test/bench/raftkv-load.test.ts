// The raftkv side of the benchmark (bench/lib/raftkv-load.ts) against a real 3-node cluster on
// 127.0.0.1: "spread" must really stay spread (the plain client would follow the leader hint
// to the leader; the benchmark's transport hides it, and every answer's raftkv-node header is
// checked), a client that does move is counted as misrouted, and what was reported written is
// in the store.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { RaftKvClient } from '../../src/client/index.js';
import { Resources } from '../../bench/lib/processes.js';
import { startRaftkv } from '../../bench/lib/raftkv-cluster.js';
import { raftkvMembers, runRaftkvLoad } from '../../bench/lib/raftkv-load.js';
import { benchKey } from '../../bench/lib/workload.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const KEYS = 30;
const res = new Resources();
after(() => res.releaseAll(2000));

test('spread clients stay on the member they were given; one that follows the leader is counted as misrouted', { timeout: 90_000 }, async () => {
  const sut = await startRaftkv(res, { mainPath: MAIN, nodes: 3, profileDir: null, leaderTimeoutMs: 20_000 });
  try {
    const members = await raftkvMembers(sut.leaderUrl);
    assert.deepEqual(members.map((m) => m.id), ['n1', 'n2', 'n3']);
    const leaderIndex = members.findIndex((m) => m.id === sut.leaderName);
    assert.ok(leaderIndex >= 0);
    const value = randomBytes(256);
    const common = { members, warmupMs: 200, durationMs: 800, keys: KEYS, value };

    const spread = await runRaftkvLoad({ ...common, leaderIndex, routing: 'spread', concurrency: 3 });
    assert.equal(spread.errors, 0, `errors: first ${spread.firstError}`);
    assert.ok(spread.ops > 0);
    assert.equal(spread.misrouted, 0, 'a spread client was answered by another node than the one it was aimed at');
    assert.ok(spread.completed >= KEYS, `too few writes to cover every key (${spread.completed})`);

    // "leader" keeps the leader hint: aimed at a follower, the client moves to the real leader.
    const follower = (leaderIndex + 1) % members.length;
    const moved = await runRaftkvLoad({ ...common, leaderIndex: follower, routing: 'leader', concurrency: 1 });
    assert.ok(moved.misrouted > 0 && moved.misrouted >= moved.completed - 1, `misrouted ${moved.misrouted} of ${moved.completed}`);

    const client = new RaftKvClient({ endpoints: [sut.leaderUrl] });
    try {
      for (let k = 0; k < KEYS; k++) {
        const record = await client.get(benchKey(k));
        assert.ok(record !== null && Buffer.from(record.value).equals(value), `${benchKey(k)} does not hold the value written`);
      }
    } finally {
      client.close();
    }
  } finally {
    await sut.stop();
  }
});
