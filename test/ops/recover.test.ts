// The lost-quorum drill on real processes (docs/backup.md, "Recover"): a 3-node cluster loses two
// members for good; `raftkv recover --inspect` shows what each data dir holds, `raftkv recover
// --force-new-cluster` turns the survivor into a one-member cluster of itself, and it serves
// every key it held (values, revisions, leases), takes writes, and new members added with the
// ordinary membership commands catch up to the same state. Nothing the survivor held is lost: an
// entry it had appended but never saw committed (a write taken after the quorum was gone) is
// kept and committed, as the docs say.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runMain, TestCluster, type TestNode } from '../cluster/harness.js';
import { http } from '../cluster/http.js';
import { RaftKvClient } from '../../src/client/index.js';
import { storeItems, type Item } from './store-items.js';


interface Inspection {
  readonly id: string;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly commitIndex: number;
  readonly currentTerm: number;
  readonly config: { voters: string[] };
}

let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'recover-drill' });
});
after(async () => {
  await cluster?.destroy();
});

async function items(node: TestNode, consistency = 'linearizable'): Promise<Item[]> {
  return (await storeItems(node, `&consistency=${consistency}`)).items;
}

async function inspect(node: TestNode): Promise<Inspection> {
  const r = await runMain(['recover', '--inspect', '--data-dir', node.dataDir, '--json']);
  assert.equal(r.code, 0, `inspect ${node.id}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Inspection;
}

test('drill: kill 2 of 3, recover the survivor with --force-new-cluster: it keeps every key it held, takes writes, and members added back catch up', async (t) => {
  const client = new RaftKvClient({ endpoints: cluster.urls, timeoutMs: 5000 });
  let lease: number;
  try {
    lease = (await client.grantLease(900)).id;
    for (let i = 0; i < 150; i++) await client.put(`k/${i}`, `v${i}`);
    for (let i = 0; i < 150; i += 4) await client.put(`k/${i}`, `v${i}-again`);
    for (let i = 0; i < 150; i += 15) await client.delete(`k/${i}`);
    for (let i = 0; i < 4; i++) await client.put(`leased/${i}`, `l${i}`, { lease });
  } finally {
    client.close();
  }
  const survivor = await cluster.waitForLeader();
  const commit = (await survivor.status())!.commitIndex;
  for (const n of cluster.nodes) await cluster.waitApplied(n, commit);
  const held = await items(survivor);
  const others = cluster.nodes.filter((n) => n !== survivor);

  // The quorum is gone for good.
  for (const n of others) await n.stop('SIGKILL');
  // A write the survivor (still leader for a moment) appends but can never commit.
  const orphan = await http(survivor.url, '/v1/kv/orphan', { method: 'PUT', body: 'never acknowledged', headers: { 'request-timeout': '300' }, timeoutMs: 5000 });
  assert.notEqual(orphan.status, 200, 'no write is acknowledged without a quorum');

  // While it runs, its data dir is locked: recover refuses to touch it.
  const busy = await runMain(['recover', '--force-new-cluster', '--data-dir', survivor.dataDir]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /lock|held|running/i);
  await survivor.stop('SIGTERM');

  // The operator compares the survivors' data dirs (here the dead ones' too) and picks the most complete.
  const seen = await Promise.all(cluster.nodes.map((n) => inspect(n)));
  for (const s of seen) {
    assert.ok(s.lastIndex >= s.commitIndex && s.lastIndex >= commit, `${s.id}: ${JSON.stringify(s)}`);
    assert.deepEqual([...s.config.voters].sort(), ['n1', 'n2', 'n3']);
  }
  const mine = seen.find((s) => s.id === survivor.id)!;
  t.diagnostic(`inspected: ${seen.map((s) => `${s.id} last ${s.lastIndex}/${s.lastTerm} commit ${s.commitIndex}`).join('; ')}`);
  const human = await runMain(['recover', '--inspect', '--data-dir', survivor.dataDir]);
  assert.match(human.stdout, new RegExp(`last index ${mine.lastIndex} \\(term ${mine.lastTerm}\\), commit index ${mine.commitIndex}`));

  // Wrong use is refused before anything is written.
  const both = await runMain(['recover', '--inspect', '--force-new-cluster', '--data-dir', survivor.dataDir]);
  assert.equal(both.code, 2);
  const wrongId = await runMain(['recover', '--force-new-cluster', '--data-dir', survivor.dataDir, '--id', 'nobody']);
  assert.equal(wrongId.code, 1);
  assert.match(wrongId.stderr, /belongs to node/);
  assert.deepEqual(await inspect(survivor), mine, 'a refused recover changes nothing');

  const forced = await runMain(['recover', '--force-new-cluster', '--data-dir', survivor.dataDir, '--json']);
  assert.equal(forced.code, 0, forced.stderr);
  const result = JSON.parse(forced.stdout) as { keptLastIndex: number; configIndex: number; removed: string[] };
  assert.equal(result.keptLastIndex, mine.lastIndex);
  assert.deepEqual([...result.removed].sort(), others.map((n) => n.id).sort());

  for (const n of others) cluster.forget(n);
  cluster.startNode(survivor);
  await cluster.waitForLeader(20_000);
  await cluster.waitForConfiguration({ voters: [survivor.id] });
  const status = (await survivor.status())!;
  assert.ok(status.appliedIndex >= result.configIndex, `applied ${status.appliedIndex}: every entry it held is applied`);

  const after = await items(survivor);
  const byKey = new Map(after.map((i) => [i.key, i]));
  for (const i of held) assert.deepEqual(byKey.get(i.key), i, `${i.key} as it was`);
  // Anything else it serves is what it had appended without a quorum: only the orphan can be, and
  // if its log reached past the commit index seen before the kills, the orphan is what it held
  // there (nothing else was proposed): kept, and committed now.
  const extra = after.map((i) => i.key).filter((k) => !held.some((h) => h.key === k));
  assert.deepEqual(extra, mine.lastIndex > commit ? ['orphan'] : [], `last index ${mine.lastIndex}, commit before the kills ${commit}`);
  const leaseView = (await http(survivor.url, `/v1/leases/${lease!}?keys`)).json<{ keys: string[] }>();
  assert.deepEqual([...leaseView.keys].sort(), ['leased/0', 'leased/1', 'leased/2', 'leased/3']);

  const put = await http(survivor.url, '/v1/kv/after-recovery', { method: 'PUT', body: 'ok' });
  assert.equal(put.status, 200, put.text);

  // Grow back to three with the ordinary membership commands; the new members catch up.
  const n4 = await cluster.addSlot('n4');
  cluster.startJoining(n4, survivor);
  await cluster.waitForConfiguration({ voters: [survivor.id, 'n4'] }, 30_000);
  const n5 = await cluster.addSlot('n5');
  cluster.startJoining(n5, survivor);
  await cluster.waitForConfiguration({ voters: [survivor.id, 'n4', 'n5'] }, 30_000);
  await cluster.waitForReady(20_000);
  const final = await items(survivor);
  for (const n of [n4, n5]) {
    const c = (await survivor.status())!.commitIndex;
    await cluster.waitApplied(n, c);
    assert.deepEqual(await items(n, 'stale'), final, `${n.id} serves the same state`);
  }
  assert.ok(final.some((i) => i.key === 'after-recovery'));
  // The grown cluster survives losing the recovered member: a quorum of the new ones carries on.
  await survivor.stop('SIGKILL');
  cluster.forget(survivor);
  const leader = await cluster.waitForLeader(20_000);
  const last = await http(leader.url, '/v1/kv/k%2F1');
  assert.equal(last.status, 200);
  assert.equal(last.json<{ value: string }>().value, 'v1');
});
