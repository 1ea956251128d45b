// §5.4.1 on real processes, by design rather than by luck: a member that missed committed writes
// comes back first and alone, with a short election timeout, and keeps campaigning; an up-to-date
// member comes back with a long one. Once its restart lease is over (a restarted server grants no
// vote for its first election timeout, roles.ts inLease) and until its own timeout fires, the
// stale member's vote requests reach it every 150–300 ms, and only the up-to-date check refuses
// them. So the stale member must never lead, the up-to-date one must, and every acknowledged
// write must survive. With the check removed (mutant vote-without-up-to-date-check-faults) the
// stale member wins that window, and the up-to-date member refuses its appends as contradicting
// committed entries: the Leader Completeness alarm in its log, which this test also looks for.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LEADER_COMPLETENESS_ALARM } from '../../src/node/index.js';
import { pollUntil, TestCluster, type TestNode } from './harness.js';
import { http, type KvRecordJson, type NodeStatus } from './http.js';

const ELECTION_MS = 300;
const STALE_ELECTION_MS = 150;
const UP_TO_DATE_ELECTION_MS = 2000;
const WRITES = 20;

let cluster: TestCluster | undefined;
after(() => cluster?.destroy());

/** The node's last start flags with `--election-ms` set to `ms`. */
function withElectionMs(node: TestNode, ms: number): string[] {
  const args = [...node.args];
  const at = args.indexOf('--election-ms');
  assert.ok(at >= 0, `${node.id} was started without --election-ms`);
  args[at + 1] = String(ms);
  return args;
}

async function put(node: TestNode, key: string, value: string): Promise<void> {
  const r = await http(node.url, `/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value, timeoutMs: 5000 });
  assert.equal(r.status, 200, `PUT ${key}: ${r.text}`);
}

/** Log lines written after `from` characters: what the incarnation started since then said. */
function logSince(node: TestNode, from: number): string {
  return readFileSync(node.logFile, 'utf8').slice(from);
}

test('§5.4.1 a stale member that campaigns first, alone and fast, never wins against an up-to-date one, and nothing acknowledged is lost', { timeout: 90_000 }, async (t) => {
  cluster = await TestCluster.start({ size: 3, name: 'stale-election', electionMs: ELECTION_MS });
  const leader = await cluster.waitForLeader();
  const [stale, other] = cluster.nodes.filter((n) => n !== leader) as [TestNode, TestNode];
  await put(leader, 'se/0', 'before');
  await stale.stop('SIGKILL');
  // Committed by the leader and `other`, acknowledged, and missing from the stale member's log.
  for (let i = 1; i <= WRITES; i++) await put(leader, `se/${i}`, `v${i}`);
  await Promise.all([leader.stop('SIGKILL'), other.stop('SIGKILL')]);

  const staleLogFrom = readFileSync(stale.logFile, 'utf8').length;
  stale.start(withElectionMs(stale, STALE_ELECTION_MS));
  // Alone, it cannot win: it pre-votes every 150–300 ms with nobody to answer.
  await pollUntil(`${stale.id} serving again`, 10_000, async () => ((await stale.status(200)) === null ? undefined : true));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const upToDate = other;
  const upToDateLogFrom = readFileSync(upToDate.logFile, 'utf8').length;
  const restartedAt = Date.now();
  upToDate.start(withElectionMs(upToDate, UP_TO_DATE_ELECTION_MS));
  const elected = await pollUntil('a leader among the two restarted members', 20_000, async () => {
    const statuses = await Promise.all([stale, upToDate].map((n) => n.status(200)));
    return statuses.find((x): x is NodeStatus => x !== null && x.role === 'leader');
  }, 20);
  t.diagnostic(`${elected.id} leads term ${elected.term}, ${Date.now() - restartedAt} ms after ${upToDate.id} restarted (its election timeout ${UP_TO_DATE_ELECTION_MS} ms; ${stale.id}'s ${STALE_ELECTION_MS} ms)`);
  // The window was open: the up-to-date member restarted more than its restart lease ago, and
  // the stale one asked for votes all along.
  assert.equal(elected.id, upToDate.id, `the stale member ${stale.id} was elected`);
  assert.ok(Date.now() - restartedAt >= UP_TO_DATE_ELECTION_MS, 'elected before its restart lease was over: the window this test is about never opened');
  const staleSaid = logSince(stale, staleLogFrom);
  assert.ok(!/"msg":"role changed","role":"leader"/.test(staleSaid), `${stale.id} led at some point: ${staleSaid.split('\n').filter((l) => l.includes('role changed')).join(' | ')}`);
  assert.ok(!logSince(upToDate, upToDateLogFrom).includes(LEADER_COMPLETENESS_ALARM), `${upToDate.id} refused a leader whose log contradicts its committed entries`);

  // The third member comes back; every acknowledged write is there, read linearizably.
  cluster.startNode(leader);
  await cluster.waitForReady(15_000);
  const r = await http(upToDate.url, '/v1/kv?prefix=se%2F&limit=1000&consistency=linearizable', { timeoutMs: 10_000 });
  assert.equal(r.status, 200, r.text);
  const stored = new Map(r.json<{ items: KvRecordJson[] }>().items.map((item) => [item.key, item.value]));
  assert.equal(stored.get('se/0'), 'before');
  for (let i = 1; i <= WRITES; i++) assert.equal(stored.get(`se/${i}`), `v${i}`, `acknowledged write se/${i} lost`);
});
