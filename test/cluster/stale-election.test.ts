// §5.4.1 on real processes, by design rather than by luck: a member that missed committed writes
// comes back first and alone, with a short election timeout, and keeps campaigning; an up-to-date
// member comes back with a long one. Once its restart lease is over (a restarted server grants no
// vote for its first election timeout, roles.ts inLease) and until its own timeout fires, the
// stale member's vote requests reach it every 60–120 ms, and only the up-to-date check refuses
// them. Three trials: the stale member must never lead, the up-to-date one must, and every
// acknowledged write must survive. With the check removed (mutant
// vote-without-up-to-date-check-faults) the stale member wins that window (6 runs of 6), and the
// up-to-date member refuses its appends as contradicting committed entries: the Leader
// Completeness alarm in its log, which this test also looks for.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LEADER_COMPLETENESS_ALARM } from '../../src/node/index.js';
import { pollUntil, TestCluster, type TestNode } from './harness.js';
import { http, type KvRecordJson, type NodeStatus } from './http.js';

const ELECTION_MS = 300;
/** The stale member's timers: it asks for votes every 60–120 ms. */
const STALE_TIMERS = { heartbeatMs: 20, electionMs: 60 };
/** The up-to-date member's: a restart lease of 2 s, then its own timeout 0–2 s later. */
const UP_TO_DATE_TIMERS = { heartbeatMs: 50, electionMs: 2000 };
const WRITES = 20;
/**
 * A trial misses the window when the up-to-date member times out just after its lease ends: 2
 * of the first 8 trials with the check removed.
 */
const TRIALS = 3;

let cluster: TestCluster | undefined;
after(() => cluster?.destroy());

/** The node's last start flags with its timers set. */
function withTimers(node: TestNode, timers: { heartbeatMs: number; electionMs: number }): string[] {
  const args = [...node.args];
  for (const [flag, value] of [['--heartbeat-ms', timers.heartbeatMs], ['--election-ms', timers.electionMs]] as const) {
    const at = args.indexOf(flag);
    assert.ok(at >= 0, `${node.id} was started without ${flag}`);
    args[at + 1] = String(value);
  }
  return args;
}

async function put(node: TestNode, key: string, value: string): Promise<void> {
  const r = await http(node.url, `/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value, timeoutMs: 5000 });
  assert.equal(r.status, 200, `PUT ${key}: ${r.text}`);
}

function logLength(node: TestNode): number {
  return readFileSync(node.logFile, 'utf8').length;
}

/** Log lines written after `from` characters: what the incarnation started since then said. */
function logSince(node: TestNode, from: number): string {
  return readFileSync(node.logFile, 'utf8').slice(from);
}

test('§5.4.1 a stale member that campaigns first, alone and fast, never wins against an up-to-date one, and nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
  cluster = await TestCluster.start({ size: 3, name: 'stale-election', electionMs: ELECTION_MS });
  const leader = await cluster.waitForLeader();
  const [stale, upToDate] = cluster.nodes.filter((n) => n !== leader) as [TestNode, TestNode];
  const third = leader;
  const acked = new Map<string, string>();
  await put(leader, 'se/0', 'before');
  acked.set('se/0', 'before');
  await stale.stop('SIGKILL');
  for (let trial = 1; trial <= TRIALS; trial++) {
    // Committed by the two others and acknowledged, missing from the stale member's log.
    const writeTo = await cluster.waitForLeader();
    for (let i = 1; i <= WRITES; i++) {
      const key = `se/${trial}/${i}`;
      await put(writeTo, key, `v${i}`);
      acked.set(key, `v${i}`);
    }
    await Promise.all([upToDate.stop('SIGKILL'), third.stop('SIGKILL')]);

    const staleFrom = logLength(stale);
    stale.start(withTimers(stale, STALE_TIMERS));
    // Alone, it cannot win: it pre-votes every 60–120 ms with nobody to answer.
    await pollUntil(`${stale.id} serving again`, 10_000, async () => ((await stale.status(200)) === null ? undefined : true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const upToDateFrom = logLength(upToDate);
    const restartedAt = Date.now();
    upToDate.start(withTimers(upToDate, UP_TO_DATE_TIMERS));
    const elected = await pollUntil('a leader among the two restarted members', 20_000, async () => {
      const statuses = await Promise.all([stale, upToDate].map((n) => n.status(200)));
      return statuses.find((x): x is NodeStatus => x !== null && x.role === 'leader');
    }, 20);
    t.diagnostic(`trial ${trial}: ${elected.id} leads term ${elected.term}, ${Date.now() - restartedAt} ms after ${upToDate.id} restarted (election timeout ${UP_TO_DATE_TIMERS.electionMs} ms; ${stale.id}'s ${STALE_TIMERS.electionMs} ms)`);
    assert.equal(elected.id, upToDate.id, `trial ${trial}: the stale member ${stale.id} was elected`);
    assert.ok(Date.now() - restartedAt >= UP_TO_DATE_TIMERS.electionMs, `trial ${trial}: elected before its restart lease was over: the window this test is about never opened`);
    const staleSaid = logSince(stale, staleFrom);
    assert.ok(!/"msg":"role changed","role":"leader"/.test(staleSaid), `trial ${trial}: ${stale.id} led at some point: ${staleSaid.split('\n').filter((l) => l.includes('role changed')).join(' | ')}`);
    assert.ok(!logSince(upToDate, upToDateFrom).includes(LEADER_COMPLETENESS_ALARM), `trial ${trial}: ${upToDate.id} refused a leader whose log contradicts its committed entries`);
    // The stale member has caught up by now: it goes down again, and the third member comes back.
    await stale.stop('SIGKILL');
    cluster.startNode(third);
  }

  // Everyone back; every acknowledged write is there, read linearizably.
  cluster.startNode(stale);
  await cluster.waitForReady(15_000);
  const r = await http(upToDate.url, '/v1/kv?prefix=se%2F&limit=1000&consistency=linearizable', { timeoutMs: 10_000 });
  assert.equal(r.status, 200, r.text);
  const stored = new Map(r.json<{ items: KvRecordJson[] }>().items.map((item) => [item.key, item.value]));
  for (const [key, value] of acked) assert.equal(stored.get(key), value, `acknowledged write ${key} lost`);
});
