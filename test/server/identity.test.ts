// Cluster identity (API.md "Security"): founders agree on a founding id, the first leader commits
// a random cluster id, and the handshake rule hears only this cluster's peers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Entry, StateMachine } from '../../src/raft/index.js';
import { ClusterFileError, ClusterIdentity, foundingId, newClusterId, readClusterFile } from '../../src/server/identity.js';
import { encodeClusterIdRecord, encodeMemberRecord, MEMBER_RECORD_TAG, ServiceStateMachine } from '../../src/server/member-registry.js';
import { encodeCommand, KvStateMachine } from '../../src/kv/index.js';

const cluster = (s: string): Map<string, { host: string; port: number }> =>
  new Map(s.split(',').map((p) => [p.split('=')[0]!, { host: '127.0.0.1', port: Number(p.split(':')[1]) }]));

test('founders agree on the founding id whatever the order of --initial-cluster; the token and the addresses change it', () => {
  const a = foundingId(cluster('n1=x:1,n2=x:2,n3=x:3'), 'raftkv');
  assert.equal(a, foundingId(cluster('n3=x:3,n1=x:1,n2=x:2'), 'raftkv'));
  assert.notEqual(a, foundingId(cluster('n1=x:1,n2=x:2,n3=x:3'), 'other-token'));
  assert.notEqual(a, foundingId(cluster('n1=x:1,n2=x:2,n3=x:4'), 'raftkv'));
  assert.match(a, /^f-[0-9a-f]{32}$/);
  assert.notEqual(newClusterId(), newClusterId());
});

test('the handshake rule: our cluster id from anyone; the founding id only from founders; nothing else', () => {
  const founding = 'f-' + '1'.repeat(32);
  const x = newClusterId();
  const learning = new ClusterIdentity(null, founding, new Set(['n1', 'n2', 'n3']));
  assert.equal(learning.presented(), founding);
  assert.equal(learning.refusal(founding, 'n2'), null, 'a founder that has not learned the id either');
  assert.equal(learning.refusal(x, 'n2'), null, 'a founder that has: we learn it from the log it replicates');
  assert.notEqual(learning.refusal(x, 'n9'), null, 'a stranger naming some id');
  assert.notEqual(learning.refusal('f-' + '2'.repeat(32), 'n2'), null, 'another founding');
  learning.learn(x);
  assert.equal(learning.presented(), x);
  assert.equal(learning.refusal(x, 'n9'), null, 'a joined member presents the id');
  assert.equal(learning.refusal(founding, 'n3'), null, 'a founder still catching up');
  assert.notEqual(learning.refusal(newClusterId(), 'n2'), null, 'a founder of another cluster with the same flags, once ids differ');
  assert.notEqual(learning.refusal(founding, 'n9'), null, 'the founding id from a non-founder');
  assert.equal(learning.learn(newClusterId()), false, 'the id is learned once');
  const joiner = new ClusterIdentity(null, null, new Set());
  assert.notEqual(joiner.refusal(x, 'n1'), null, 'a joiner hears nobody until its join answer names the id');
});

test('cluster.json: a damaged or foreign file is refused with its path; version 1 files still read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-identity-'));
  try {
    assert.equal(readClusterFile(dir), null);
    const file = join(dir, 'cluster.json');
    for (const bad of ['{', '[]', '{"version":3}', '{"version":2,"nodeId":"n1","clusterId":"zz","founding":null,"founders":[],"peers":{}}', '{"id":"n1","peers":{"n2":"bad addr\\r\\n:1"}}']) {
      writeFileSync(file, bad);
      assert.throws(() => readClusterFile(dir), (err: unknown) => err instanceof ClusterFileError && err.message.includes(file));
    }
    writeFileSync(file, JSON.stringify({ id: 'n1', peers: { n1: '127.0.0.1:1', n2: '127.0.0.1:2' } }));
    const v1 = readClusterFile(dir)!;
    assert.equal(v1.nodeId, 'n1');
    assert.deepEqual(v1.founders, ['n1', 'n2']);
    assert.equal(v1.clusterId, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const entry = (index: number, data: Uint8Array): Entry => ({ index, term: 1, type: 'normal', data });

test('the registry never throws on committed bytes: invalid records are skipped the same way on every replica', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string().map((s) => new TextEncoder().encode(s)), fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v)))), { maxLength: 30 }), (payloads) => {
      const a = new ServiceStateMachine(new KvStateMachine());
      const b = new ServiceStateMachine(new KvStateMachine());
      payloads.forEach((p, i) => {
        const data = new Uint8Array(p.length + 1);
        data[0] = MEMBER_RECORD_TAG;
        data.set(p, 1);
        a.apply(entry(i + 1, data));
        b.apply(entry(i + 1, data));
      });
      assert.deepEqual([...a.addresses], [...b.addresses]);
      assert.equal(a.invalidRecords, b.invalidRecords);
      assert.deepEqual(a.snapshot(), b.snapshot());
    }),
    { seed: 20261203, numRuns: 300 },
  );
});

test('a registry record with a CR/LF or a bad address is skipped, not applied (it would end up in a header)', () => {
  const sm = new ServiceStateMachine(new KvStateMachine());
  const raw = (o: unknown): Uint8Array => Uint8Array.from([MEMBER_RECORD_TAG, ...new TextEncoder().encode(JSON.stringify(o))]);
  sm.apply(entry(1, raw({ id: 'n4', peerAddr: '127.0.0.1:1', clientAddr: 'evil\r\nx: y:1' })));
  sm.apply(entry(2, raw({ id: 'n5', peerAddr: 'not an address', clientAddr: '127.0.0.1:2' })));
  sm.apply(entry(3, raw({ id: '../x', peerAddr: '127.0.0.1:1', clientAddr: '127.0.0.1:2' })));
  assert.equal(sm.addresses.size, 0);
  assert.equal(sm.invalidRecords, 3);
  assert.throws(() => encodeMemberRecord('n4', { peerAddr: '127.0.0.1:1', clientAddr: 'a\r\nb:1' }), RangeError, 'and is never proposed');
  sm.apply(entry(4, encodeMemberRecord('n4', { peerAddr: '127.0.0.1:1', clientAddr: '127.0.0.1:2' })));
  assert.equal(sm.addresses.get('n4')?.clientAddr, '127.0.0.1:2');
});

test('the first committed cluster id wins; it rides in snapshots; version 1 snapshots restore', () => {
  const sm = new ServiceStateMachine(new KvStateMachine());
  const seen: string[] = [];
  sm.onClusterId = (id) => seen.push(id);
  const first = newClusterId();
  sm.apply(entry(1, encodeClusterIdRecord(first)));
  sm.apply(entry(2, encodeClusterIdRecord(newClusterId())));
  assert.equal(sm.clusterId, first);
  assert.deepEqual(seen, [first]);
  const copy = new ServiceStateMachine(new KvStateMachine());
  copy.restore(sm.snapshot());
  assert.equal(copy.clusterId, first);
  // Version 1: [1][u32 n][JSON [[id, addresses]]][inner]
  const registry = new TextEncoder().encode(JSON.stringify([['n2', { peerAddr: '127.0.0.1:1', clientAddr: '127.0.0.1:2' }]]));
  const inner = new KvStateMachine().snapshot();
  const v1 = new Uint8Array(5 + registry.length + inner.length);
  v1[0] = 1;
  new DataView(v1.buffer).setUint32(1, registry.length);
  v1.set(registry, 5);
  v1.set(inner, 5 + registry.length);
  const old = new ServiceStateMachine(new KvStateMachine());
  old.restore(v1);
  assert.equal(old.addresses.get('n2')?.peerAddr, '127.0.0.1:1');
  assert.equal(old.clusterId, null);
});

test('the service snapshot is written in slices behind the registry header, as it stood when it began', () => {
  const put = (key: string, value: string): Uint8Array => encodeCommand({ type: 'put', key, value: new TextEncoder().encode(value), time: 0 });
  const sm = new ServiceStateMachine(new KvStateMachine());
  let index = 0;
  sm.apply(entry(++index, encodeClusterIdRecord(newClusterId())));
  sm.apply(entry(++index, encodeMemberRecord('n2', { peerAddr: '127.0.0.1:1', clientAddr: '127.0.0.1:2' })));
  for (let i = 0; i < 500; i++) sm.apply(entry(++index, put(`k${i}`, `v${i}`)));
  const expected = sm.snapshot();
  const inProgress = sm.beginSnapshot();
  // While it is written: overwrite, create, and change the registry; none of it may show.
  let bytes: Uint8Array | 'written' | null = null;
  for (let turn = 0; bytes === null; turn++) {
    assert.ok(turn < 10_000, 'the snapshot completes');
    sm.apply(entry(++index, put(`k${turn % 500}`, `changed ${turn}`)));
    sm.apply(entry(++index, put(`new${turn}`, 'x')));
    if (turn === 3) sm.apply(entry(++index, encodeMemberRecord('n3', { peerAddr: '127.0.0.1:3', clientAddr: '127.0.0.1:4' })));
    bytes = inProgress.step(256);
  }
  assert.deepEqual(bytes, expected, 'the same bytes snapshot() gave when it began');
  const kv = new KvStateMachine();
  const copy = new ServiceStateMachine(kv);
  copy.restore(bytes);
  assert.equal(copy.clusterId, sm.clusterId);
  assert.deepEqual([...copy.addresses.keys()], ['n2']);
  assert.equal(new TextDecoder().decode(kv.get('k7')!.value), 'v7');
  assert.equal(kv.get('new0'), null);
});

test('an inner state machine that cannot slice is snapshotted whole at the first step', () => {
  const inner: StateMachine<undefined> = {
    apply: () => undefined,
    snapshot: () => Uint8Array.of(7, 8, 9),
    restore: () => undefined,
  };
  const sm = new ServiceStateMachine(inner);
  const inProgress = sm.beginSnapshot();
  assert.deepEqual(inProgress.step(1), sm.snapshot());
  assert.throws(() => inProgress.step(1), /already complete/);
});
