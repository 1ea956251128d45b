// Backup and restore drills on real processes (docs/backup.md): `raftkv snapshot save` from a
// secure 3-node cluster while it takes writes, `raftkv snapshot restore` into a new 3-node
// cluster, and the new cluster equals the source at the save point: every key with its value,
// createRevision, modRevision, version and lease, the leases themselves, and the store's revision;
// every write acknowledged before the save began is in it; the cluster id is new. Then the
// abuse: damaged, truncated and foreign files, a data dir in use, and a save without the admin
// permission, each refused with one line and a non-zero exit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeTempDir, pollUntil, removeTempDir, runMain, TestCluster, type TestNode } from '../cluster/harness.js';
import { http } from '../cluster/http.js';
import { RaftKvClient } from '../../src/client/index.js';
import { KvStateMachine } from '../../src/kv/index.js';
import { ServiceStateMachine } from '../../src/server/member-registry.js';
import { verifyBackup } from '../../src/server/backup-format.js';
import { storeItems } from './store-items.js';


let source: TestCluster;
let work: string;
let appToken: string;

before(async () => {
  work = makeTempDir('backup-drill');
  const root = makeTempDir('backup-source');
  const authFile = join(root, 'auth-with-app.json');
  source = new TestCluster({ root, secure: true, extraArgs: ['--auth-file', authFile] });
  appToken = randomBytes(24).toString('hex');
  // The harness's admin, and an application that may read and write every key but is no admin.
  writeFileSync(authFile, JSON.stringify({ principals: [
    { name: 'admin', token: source.security!.adminToken, permissions: [{ access: 'admin' }] },
    { name: 'app', token: appToken, permissions: [{ access: 'readwrite', prefix: '' }] },
  ] }), { mode: 0o600 });
  try {
    await source.startFounders(3);
    await source.waitForReady(20_000);
  } catch (err) {
    await source.destroy();
    throw err;
  }
});

after(async () => {
  await source?.destroy();
  if (work !== undefined) removeTempDir(work);
});

function secureEnv(): string[] {
  return ['--endpoints', source.urls.join(','), '--cacert', source.security!.ca.cert];
}

const listAll = (node: TestNode, revision?: number): ReturnType<typeof storeItems> => storeItems(node, revision !== undefined ? `&revision=${revision}` : '');

async function leasesOf(node: TestNode): Promise<{ id: number; grantedTtlSeconds: number; keys: string[] }[]> {
  const list = (await http(node.url, '/v1/leases')).json<{ leases: { id: number }[] }>().leases;
  const out = [];
  for (const { id } of list) {
    const l = (await http(node.url, `/v1/leases/${id}?keys`)).json<{ id: number; grantedTtlSeconds: number; keys: string[] }>();
    out.push({ id: l.id, grantedTtlSeconds: l.grantedTtlSeconds, keys: [...l.keys].sort() });
  }
  return out.sort((a, b) => a.id - b.id);
}

test('drill: snapshot save under writes, restore into a new 3-node cluster, which equals the source at the save point', async (t) => {
  const client = new RaftKvClient({ endpoints: source.urls, ca: readFileSync(source.security!.ca.cert), token: source.security!.adminToken, timeoutMs: 5000 });
  try {
    // History worth keeping: keys written several times, deleted ones, keys on two leases.
    const leaseA = await client.grantLease(600);
    const leaseB = await client.grantLease(900);
    for (let i = 0; i < 60; i++) await client.put(`k/${i}`, `v${i}-0`);
    for (let i = 0; i < 60; i += 3) await client.put(`k/${i}`, `v${i}-1`);
    for (let i = 0; i < 60; i += 10) await client.delete(`k/${i}`);
    for (let i = 0; i < 5; i++) await client.put(`leased/a${i}`, `a${i}`, { lease: leaseA.id });
    for (let i = 0; i < 3; i++) await client.put(`leased/b${i}`, `b${i}`, { lease: leaseB.id });
    await client.put('bin/\u00e9', 'caf\u00e9');

    // Writers go on while the save runs; what they had acknowledged before it began must be in it.
    const acked: string[] = [];
    let isWriting = true;
    const writers = [0, 1, 2].map(async (w) => {
      for (let seq = 0; isWriting; seq++) {
        const key = `load/${w}/${seq}`;
        try {
          await client.put(key, `${w}:${seq}`);
          acked.push(key);
        } catch {
          // An unknown outcome proves nothing either way; the next write goes on.
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const ackedBefore = [...acked];
    const file = join(work, 'backup.rkv');
    const saved = await runMain(['snapshot', 'save', file, ...secureEnv(), '--token', source.security!.adminToken, '--json'], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 200));
    isWriting = false;
    await Promise.all(writers);
    assert.equal(saved.code, 0, `save: ${saved.stderr}`);
    const report = JSON.parse(saved.stdout) as { index: number; bytes: number; sha256: string; clusterId: string };
    assert.ok(report.index > 0 && report.bytes > 0 && /^[0-9a-f]{64}$/.test(report.sha256), saved.stdout);
    assert.ok(!readdirSync(work).some((n) => n.includes('.tmp')), 'no temporary file is left behind');
    const sourceStatus = (await http(source.nodes[0]!.url, '/v1/status')).json<{ clusterId: string }>();
    assert.equal(report.clusterId, sourceStatus.clusterId);

    // A new cluster: three new slots, each restored from the same file.
    const target = new TestCluster({ root: makeTempDir('backup-target') });
    try {
      const slots = [await target.addSlot(), await target.addSlot(), await target.addSlot()];
      target.initialCluster = slots.map((n) => `${n.id}=${n.peerAddr}`).join(',');
      for (const n of slots) {
        const r = await runMain(['snapshot', 'restore', file, '--data-dir', n.dataDir, '--id', n.id, '--initial-cluster', target.initialCluster, '--json'], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, `restore ${n.id}: ${r.stderr}`);
        assert.equal((JSON.parse(r.stdout) as { index: number }).index, report.index);
      }
      for (const n of slots) target.startNode(n);
      await target.waitForReady(30_000);

      const restored = await listAll(slots[0]!);
      // The source as it was at that revision, from its own history.
      const expected = await listAll(source.nodes[1]!, restored.revision);
      assert.ok(restored.items.length > 70, `restored ${restored.items.length} keys`);
      assert.deepEqual(restored.items, expected.items, 'every key, value, revision, version and lease as the source had them');
      assert.ok(expected.revision >= restored.revision);
      const present = new Set(restored.items.map((i) => i.key));
      t.diagnostic(`restored ${restored.items.length} keys at revision ${restored.revision}; ${ackedBefore.length} writes acknowledged before the save, ${acked.length} in all`);
      const missing = ackedBefore.filter((k) => !present.has(k));
      assert.deepEqual(missing, [], 'writes acknowledged before the save began are in the backup');
      // Every member serves the same state.
      for (const n of slots.slice(1)) assert.deepEqual((await listAll(n)).items, restored.items, `${n.id} serves the same state`);

      // Leases: the same ids, TTLs and keys (the new leader gives each a fresh TTL).
      const targetLeases = await leasesOf(slots[0]!);
      const sourceLeases = (await leasesOf(source.nodes[0]!)).filter((l) => l.id === leaseA.id || l.id === leaseB.id);
      assert.deepEqual(targetLeases, sourceLeases);
      assert.deepEqual(targetLeases.map((l) => l.keys.length).sort(), [3, 5]);

      const targetStatus = (await http(slots[0]!.url, '/v1/status')).json<{ clusterId: string; members: { id: string }[] }>();
      assert.match(targetStatus.clusterId, /^[0-9a-f]{32}$/);
      assert.notEqual(targetStatus.clusterId, sourceStatus.clusterId, 'the restored cluster has a new cluster id');
      assert.deepEqual(targetStatus.members.map((m) => m.id).sort(), ['n1', 'n2', 'n3']);

      // It is a working cluster that goes on from the backup's revision.
      const put = await http(slots[1]!.url, '/v1/kv/after-restore', { method: 'PUT', body: 'yes' });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.json<{ revision: number }>().revision, restored.revision + 1);
      const old = await http(slots[2]!.url, `/v1/kv/k%2F1?revision=${restored.revision - 1}`);
      assert.equal(old.status, 200, `history before the save point is readable: ${old.text}`);
    } finally {
      await target.destroy();
    }
  } finally {
    client.close();
  }
});

test('abuse: damaged, truncated and foreign backups and a used data dir are refused with one line naming the file and offset', async () => {
  const file = join(work, 'good.rkv');
  const saved = await runMain(['snapshot', 'save', file, ...secureEnv(), '--token', source.security!.adminToken], { timeoutMs: 60_000 });
  assert.equal(saved.code, 0, saved.stderr);
  const good = readFileSync(file);
  const flipped = Buffer.from(good);
  flipped[Math.floor(good.length / 2)]! ^= 0x40;
  const cases: [string, Buffer, RegExp][] = [
    ['flipped.rkv', flipped, /SHA-256 checksum mismatch.*offset \d+/],
    ['truncated.rkv', good.subarray(0, good.length - 1000), /truncated.*offset \d+/],
    ['head-only.rkv', good.subarray(0, 10), /truncated.*offset \d+/],
    ['foreign.rkv', Buffer.from('{"this is":"not a backup, but long enough to look like one at first"}'), /not a raftkv backup.*offset 0/],
    ['empty.rkv', Buffer.alloc(0), /truncated.*offset 0/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const path = join(work, name);
    writeFileSync(path, bytes);
    const dataDir = join(work, `dd-${name}`);
    const r = await runMain(['snapshot', 'restore', path, '--data-dir', dataDir, '--id', 'n1', '--initial-cluster', 'n1=127.0.0.1:1']);
    assert.notEqual(r.code, 0, `${name} must be refused`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${name}: ${r.stderr}`);
    assert.ok(lines[0]!.includes(path), `${name}: the line names the file: ${lines[0]}`);
    assert.match(lines[0]!, pattern, name);
    assert.equal(existsSync(dataDir), false, `${name}: nothing is written`);
    // `snapshot status` checks the same way.
    const st = await runMain(['snapshot', 'status', path]);
    assert.equal(st.code, 1, `status of ${name}: ${st.stdout}`);
    assert.equal(st.stderr.trim().split('\n').length, 1);
    assert.match(st.stderr, pattern, `status of ${name}`);
  }
  const status = await runMain(['snapshot', 'status', file, '--json']);
  assert.equal(status.code, 0, status.stderr);
  const seen = JSON.parse(status.stdout) as { keys: number; revision: number; leases: number; index: number; members: string[]; sha256: string };
  assert.ok(seen.keys > 70 && seen.revision > seen.keys && seen.leases === 2 && seen.index > 0, status.stdout);
  assert.deepEqual([...seen.members].sort(), ['n1', 'n2', 'n3']);
  // A data dir that holds anything is not restored over.
  const used = join(work, 'used');
  mkdirSync(used);
  writeFileSync(join(used, 'something'), 'x');
  const r = await runMain(['snapshot', 'restore', file, '--data-dir', used, '--id', 'n1', '--initial-cluster', 'n1=127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not empty/);
  // Usage errors name the flag.
  const noId = await runMain(['snapshot', 'restore', file, '--data-dir', join(work, 'x'), '--initial-cluster', 'n1=127.0.0.1:1']);
  assert.equal(noId.code, 2);
  assert.match(noId.stderr, /--id/);
  const notNamed = await runMain(['snapshot', 'restore', file, '--data-dir', join(work, 'x'), '--id', 'n9', '--initial-cluster', 'n1=127.0.0.1:1']);
  assert.equal(notNamed.code, 2);
  assert.match(notNamed.stderr, /does not name this node/);
});

test('abuse: snapshot save needs the admin permission (403 for a readwrite token, 401 without one); bad requests get 4xx and the node serves on', async () => {
  const target = join(work, 'refused.rkv');
  const asApp = await runMain(['snapshot', 'save', target, ...secureEnv(), '--token', appToken]);
  assert.equal(asApp.code, 1, asApp.stderr);
  assert.match(asApp.stderr, /403 PERMISSION_DENIED/);
  assert.equal(asApp.stderr.trim().split('\n').length, 1);
  const anonymous = await runMain(['snapshot', 'save', target, ...secureEnv()]);
  assert.equal(anonymous.code, 1, anonymous.stderr);
  assert.match(anonymous.stderr, /401 UNAUTHENTICATED/);
  assert.equal(existsSync(target), false, 'no file is written when refused');
  const node = source.nodes[0]!;
  assert.equal((await http(node.url, '/v1/snapshot?x=1')).status, 400);
  assert.equal((await http(node.url, '/v1/snapshot', { method: 'POST', body: '{}' })).status, 405);
  // A client that hangs up mid-stream leaves nothing held: the next backup is served.
  const cut = await fetchFirstBytes(node.url);
  assert.ok(cut > 0);
  const again = await runMain(['snapshot', 'save', join(work, 'after-cut.rkv'), ...secureEnv(), '--token', source.security!.adminToken], { timeoutMs: 60_000 });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await http(node.url, '/readyz')).status, 200);
});

/** Reads a little of a backup stream and hangs up. */
async function fetchFirstBytes(url: string): Promise<number> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v1/snapshot', url), { ca: readFileSync(source.security!.ca.cert), headers: { authorization: `Bearer ${source.security!.adminToken}` } }, (res) => {
      res.once('data', (c: Buffer) => {
        req.destroy();
        resolve(c.length);
      });
      res.on('error', () => undefined);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.setTimeout(10_000, () => req.destroy(new Error('no answer')));
    req.end();
  });
}

test('abuse: one backup at a time per node: a second while one streams gets 503 OVERLOADED, and the slot is free again once the first client leaves', async () => {
  // More than the kernel buffers of one loopback connection hold, so a client that reads nothing
  // keeps the stream (and the slot) busy.
  const node = source.nodes[0]!;
  const big = 'x'.repeat(1_000_000);
  for (let i = 0; i < 24; i++) assert.equal((await http(node.url, `/v1/kv/big%2F${i}`, { method: 'PUT', body: big, timeoutMs: 20_000 })).status, 200);
  const { request } = await import('node:https');
  const ca = readFileSync(source.security!.ca.cert);
  const headers = { authorization: `Bearer ${source.security!.adminToken}` };
  const stalled = await new Promise<import('node:http').ClientRequest>((resolve, reject) => {
    const req = request(new URL('/v1/snapshot', node.url), { ca, headers }, (res) => {
      assert.equal(res.statusCode, 200);
      res.pause();
      resolve(req);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.setTimeout(20_000, () => req.destroy(new Error('no answer')));
    req.end();
  });
  try {
    const second = await http(node.url, '/v1/snapshot', { timeoutMs: 20_000 });
    assert.equal(second.status, 503, second.text.slice(0, 200));
    assert.equal(second.json<{ error: { code: string } }>().error.code, 'OVERLOADED');
    assert.ok(Number(second.headers['retry-after']) > 0, 'with Retry-After');
  } finally {
    stalled.destroy();
  }
  await pollUntil('the slot to be free after the stalled client left', 10_000, async () => {
    const r = await http(node.url, '/v1/snapshot', { timeoutMs: 30_000 });
    return r.status === 200 ? r : undefined;
  }, 200);
  for (let i = 0; i < 24; i++) await http(node.url, `/v1/kv/big%2F${i}`, { method: 'DELETE' });
});

test('a backup taken through a follower holds every write the leader acknowledged before it began (the read barrier)', async () => {
  const leader = await source.waitForLeader();
  const follower = source.nodes.find((n) => n !== leader)!;
  for (let i = 0; i < 20; i++) assert.equal((await http(leader.url, `/v1/kv/fresh%2F${i}`, { method: 'PUT', body: `f${i}` })).status, 200);
  const file = join(work, 'from-follower.rkv');
  const saved = await runMain(['snapshot', 'save', file, '--endpoints', follower.url, '--cacert', source.security!.ca.cert, '--token', source.security!.adminToken], { timeoutMs: 60_000 });
  assert.equal(saved.code, 0, saved.stderr);
  const backup = verifyBackup(file, readFileSync(file));
  assert.equal(backup.header.node, follower.id, 'the follower served it itself');
  const kv = new KvStateMachine();
  new ServiceStateMachine(kv).restore(backup.snapshot.data);
  for (let i = 0; i < 20; i++) assert.equal(Buffer.from(kv.get(`fresh/${i}`)?.value ?? []).toString('utf8'), `f${i}`, `fresh/${i} is in the backup`);
});
