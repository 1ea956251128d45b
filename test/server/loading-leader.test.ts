// A restart's first write need not wait for the leader's own load (src/server/service.ts,
// appendForwardedWhileLoading): a restarted member runs its core beside the load of its state
// machine, so it can win an election before that load ends, and a member that has loaded its
// own state forwards writes to it. Three full nodes in this process (InProcessCluster: real
// sockets, data dirs and fsync), so the test sees exactly when the restarted node's start ends.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { InProcessCluster, pollUntil, type InProcessNode } from '../../src/harness/index.js';
import { makeTempDir, removeTempDir } from '../../src/harness/index.js';
import { encodeCommand } from '../../src/kv/index.js';
import { RaftNode } from '../../src/node/index.js';
import { ApiError } from '../../src/server/errors.js';
import { createKvBackend } from '../../src/server/kv-backend.js';
import { encodeMemberRecord } from '../../src/server/member-registry.js';
import type { ForwardedProposal } from '../../src/server/proposals.js';
import { appendForwardedWhileLoading, loadingBudgetBytes, type Authorize } from '../../src/server/service.js';
import { FileStorage } from '../../src/storage/index.js';
import { http } from '../cluster/http.js';

/** Enough keys that loading them takes a restarted node many turns of its loop. */
const KEYS = 400_000;
const PUTS_PER_TXN = 128;

let cluster: InProcessCluster;
before(async () => {
  // No idle snapshots: the state each restart loads is the one the test asked for.
  // Three nodes share this process's loop, which a fill holds for long turns: a longer election
  // timeout than the harness's keeps the leader through it.
  cluster = await InProcessCluster.start({ size: 3, name: 'loading-leader', electionMs: 1000, heartbeatMs: 100, extraArgs: ['--snapshot-idle-ms', '0', '--log-level', 'info'] });
});
after(() => cluster?.destroy());

/** KEYS keys, in transactions of PUTS_PER_TXN puts; one that finds no leader is sent again (the same puts twice change nothing). */
async function fill(): Promise<void> {
  const value = 'v'.repeat(32);
  const txns: string[] = [];
  for (let i = 0; i < KEYS; i += PUTS_PER_TXN) {
    const success = [];
    for (let j = i; j < Math.min(KEYS, i + PUTS_PER_TXN); j++) success.push({ type: 'put', key: `fill/${String(j).padStart(7, '0')}`, value });
    txns.push(JSON.stringify({ compare: [], success, failure: [] }));
  }
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < txns.length) {
      const body = txns[next++]!;
      for (let tries = 1; ; tries++) {
        const via = await cluster.waitForLeader();
        const r = await http(via.url, '/v1/txn', { method: 'POST', headers: { 'content-type': 'application/json' }, body, timeoutMs: 30_000 });
        if (r.status === 200) break;
        assert.ok(r.status === 503 && tries < 10, `a transaction of the fill: ${r.status} ${r.text}`);
      }
    }
  }));
}

/** Whether `node`'s log says its core started in its latest incarnation (the log file holds every one). */
function coreStartedSince(node: InProcessNode, from: number): boolean {
  return readFileSync(node.logFile, 'utf8').slice(from).includes('"core started"');
}

test('a restarted node that wins leadership before its own state is loaded appends the writes a loaded member forwards, and they are answered before its start ends', { timeout: 180_000 }, async () => {
  await fill();
  // Every node snapshots what was written, so a restart loads it rather than replaying it.
  for (const n of cluster.nodes) await n.running!.node.snapshotNow();
  // The attempts whose write was answered while the restarted node was still loading.
  const answeredWhileLoading: number[] = [];
  const notes: string[] = [];
  // An attempt shows nothing if the restarted node loaded its state before the transfer reached
  // it (a fast machine): then it is tried again with another node. A node that refuses writes
  // until it has loaded never shows it.
  for (let attempt = 1; attempt <= 5 && answeredWhileLoading.length === 0; attempt++) {
    const leader = await cluster.waitForLeader();
    const [restarted, forwarder] = cluster.nodes.filter((n) => n !== leader) as [InProcessNode, InProcessNode];
    await cluster.stopNode(restarted);
    const logFrom = readFileSync(restarted.logFile, 'utf8').length;
    let hasStarted = false;
    const t0 = performance.now();
    let startedMs = 0;
    const starting = cluster.startNode(restarted).then(() => {
      hasStarted = true;
      startedMs = performance.now() - t0;
    });
    await pollUntil(`${restarted.id}'s core to start`, 30_000, async () => (coreStartedSince(restarted, logFrom) ? true : undefined), 1);
    const coreMs = performance.now() - t0;
    const transfer = await http(leader.url, '/v1/leader/transfer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: restarted.id }), timeoutMs: 10_000 });
    if (transfer.status !== 200 || hasStarted) {
      notes.push(`attempt ${attempt}: transfer ${transfer.status} at ${(performance.now() - t0).toFixed(0)} ms, ${restarted.id} ${hasStarted ? 'had loaded' : 'still loading'}`);
      await starting;
      continue;
    }
    const transferredMs = performance.now() - t0;
    const put = await http(forwarder.url, `/v1/kv/while-loading-${attempt}`, { method: 'PUT', body: 'taken', timeoutMs: 10_000 });
    const isWhileLoading = !hasStarted;
    const answeredMs = performance.now() - t0;
    await starting;
    assert.equal(put.status, 200, `a write through ${forwarder.id} while ${restarted.id} leads: ${put.status} ${put.text}`);
    // ms after the restart: its core started, it led, the write was answered, its start ended.
    notes.push(`attempt ${attempt}: ${restarted.id} core ${coreMs.toFixed(0)}, leader ${transferredMs.toFixed(0)}, write answered ${answeredMs.toFixed(0)} (${isWhileLoading ? 'before' : 'after'} its start ended, ${startedMs.toFixed(0)})`);
    if (isWhileLoading) answeredWhileLoading.push(attempt);
  }
  assert.ok(answeredWhileLoading.length > 0, `no write was answered while the leader was still loading its state: ${notes.join('; ')}`);
  // The write is there for every node, the restarted leader's own state included.
  const leader = await cluster.waitForLeader();
  const last = leader.status()!.commitIndex;
  for (const n of cluster.nodes) await cluster.waitApplied(n, last);
  for (const n of cluster.nodes) {
    for (const a of answeredWhileLoading) {
      const r = await http(n.url, `/v1/kv/while-loading-${a}?raw&consistency=stale`);
      assert.equal(r.text, 'taken', `${n.id} holds the write of attempt ${a}`);
    }
  }
});

test('while it loads, a leader checks what members forward as it does after: a bad command, a registry record or a principal its file denies is refused; growing writes stop at the budget with 503 STARTING, deletes do not', async () => {
  const dir = makeTempDir('loading-checks');
  const { stateMachine, backend } = createKvBackend({ maxKeyBytes: 4096, maxValueBytes: 1 << 20 });
  const node = await RaftNode.start({ id: 'a', storage: await FileStorage.open(dir), stateMachine, transport: { send(): void {} }, initialCluster: { voters: ['a'], votersOutgoing: [], learners: [] }, heartbeatMs: 50, electionMs: 300 });
  try {
    await pollUntil('a leader', 10_000, async () => (node.isLeader ? true : undefined));
    const authorize: Authorize = (principal) => {
      if (principal === 'mallory') throw new ApiError('PERMISSION_DENIED', 'mallory may not write');
    };
    const append = appendForwardedWhileLoading(node, backend, authorize, 64_000);
    assert.equal(loadingBudgetBytes(64_000), 1000);
    const put = (key: string, bytes: number, principal: string | null = null): ForwardedProposal => ({ command: encodeCommand({ type: 'put', key, value: new Uint8Array(bytes), time: 1 }), principal });
    const answer = append(
      [
        put('small', 100),
        put('denied', 10, 'mallory'),
        put('', 10),
        { command: encodeMemberRecord('mallory', { peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' }), principal: null },
        put('too-big', 2000),
        put('fits', 700),
        put('over', 300),
        { command: encodeCommand({ type: 'delete', key: 'small', time: 1 }), principal: null },
      ],
      'b',
    );
    assert.ok('outcomes' in answer, JSON.stringify(answer));
    const codes = answer.outcomes.map((o) => ('code' in o ? o.code : 'appended'));
    assert.deepEqual(codes, ['appended', 'PERMISSION_DENIED', 'BAD_REQUEST', 'BAD_REQUEST', 'STARTING', 'appended', 'STARTING', 'appended']);
    const last = answer.outcomes.at(-1)!;
    assert.ok('index' in last);
    await pollUntil('the appended writes to apply', 10_000, async () => (node.appliedIndex >= last.index ? true : undefined));
    assert.equal(stateMachine.get('fits')?.value.length, 700);
    assert.equal(stateMachine.get('small'), null, 'the delete went in past the budget');
    for (const key of ['denied', 'too-big', 'over']) assert.equal(stateMachine.get(key), null, `${key} was not appended`);
  } finally {
    await node.stop();
    removeTempDir(dir);
  }
});

test('while it loads, a leader takes growing writes up to a 64th of --quota-bytes, 16 MiB at most', () => {
  assert.equal(loadingBudgetBytes(2 * 1024 ** 3), 16 * 2 ** 20);
  assert.equal(loadingBudgetBytes(64 * 2 ** 20), 2 ** 20);
  assert.equal(loadingBudgetBytes(1 << 20), 16_384);
});
