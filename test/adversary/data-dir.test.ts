// The adversary suite on a node's data dir (issue 9, "Operational safety"; API.md "Security": "one
// process per data dir (a lock; a second start exits non-zero naming the holder)", "data dir 0700,
// files 0600"). Two processes on one data dir both ran as the node and corrupted its WAL, and data
// was world-readable. On a 3-node cluster of its own: a second process that is NOT refused writes
// into the victim's WAL, and that damage must not reach the other attacks. After each attack,
// assertUnharmed (unharmed.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, freePorts, runMain, type RunResult } from '../cluster/harness.js';
import { pidOf } from './node-process.js';
import { Ledger, assertUnharmed } from './unharmed.js';

let cluster: TestCluster | undefined;
let ledger: Ledger;
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'adv-datadir' });
  ledger = await Ledger.open(cluster);
});
after(() => cluster?.destroy());

test("a second `raftkv serve` on a running node's data dir exits non-zero with a line naming the holder", { timeout: 30_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const victim = cluster!.nodes.find((n) => n !== leader)!;
  const holder = pidOf(victim);
  // Other ports, so only the data dir is shared: nothing else can refuse it.
  const [peer, client] = await freePorts(2);
  const args = [
    'serve', '--id', victim.id, '--data-dir', victim.dataDir, '--peer-addr', `127.0.0.1:${peer}`, '--client-addr', `127.0.0.1:${client}`,
    '--initial-cluster', cluster!.initialCluster, '--heartbeat-ms', String(cluster!.heartbeatMs), '--election-ms', String(cluster!.electionMs),
  ];
  let run: RunResult | null = null;
  let ranOn = '';
  try {
    run = await runMain(args, { timeoutMs: 5000 });
  } catch (err) {
    ranOn = (err as Error).message;
  }
  assert.ok(run !== null, `a second raftkv serve ran on ${victim.id}'s data dir for 5 s (killed): no data dir lock refused it (${ranOn.slice(0, 300)})`);
  assert.notEqual(run.code, 0, `the second serve exited 0: ${run.stderr}`);
  assert.match(run.stderr, /lock/i, `the line says the data dir is locked: ${run.stderr}`);
  assert.match(run.stderr, new RegExp(`\\b${holder}\\b`), `the line names the holder (pid ${holder}): ${run.stderr}`);
  assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
  await assertUnharmed(ledger, 'a second process on a data dir');
});

test('data dirs are private: every directory 0700, every file 0600 or stricter', async () => {
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [join(dir, e.name), ...walk(join(dir, e.name))] : [join(dir, e.name)]));
  const loose: string[] = [];
  for (const node of cluster!.nodes) {
    for (const p of [node.dataDir, ...walk(node.dataDir)]) {
      const mode = statSync(p).mode & 0o777;
      if ((mode & 0o077) !== 0) loose.push(`${p.slice(cluster!.root.length + 1)} ${mode.toString(8)}`);
    }
  }
  assert.deepEqual(loose, [], 'paths in a data dir that others may read or enter');
  await assertUnharmed(ledger, 'reading the data dirs');
});
