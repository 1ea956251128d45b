// etcdctl (Debian's etcd-client, 3.4) against a real etcd cluster and then a raftkv cluster with
// the etcd v3 API, the same expectations on both (both.ts): put/get with every range option
// etcdctl 3.4 has, del, txn, the response header's revision, member list, endpoint status, and
// compaction (last: it is cluster-wide, and this file's clusters are shared by its tests).
//
// Compared: values, versions, counts, revisions relative to each other, error kinds and their
// text. Not compared, because they legitimately differ between two clusters: member and cluster
// ids, lease ids, absolute revisions (each cluster has its own history), server versions, sizes.
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil } from '../../src/harness/index.js';
import { b64, etcdctl, etcdctlJson, etcdctlOk } from './etcdctl.js';
import { testBoth } from './both.js';
import { errorLines, idOf, kvs, revisionOf, type DeleteOutput, type Header, type Id, type PutOutput, type RangeOutput, type TxnOutput } from './shapes.js';
import { Targets, uniquePrefix, type Target } from './targets.js';

const targets = new Targets();
after(() => targets.stopAll());

const ok = (t: Target, args: readonly string[], stdin?: string): Promise<string> => etcdctlOk(t.endpoints, args, stdin === undefined ? {} : { stdin });
const json = <T>(t: Target, args: readonly string[], stdin?: string): Promise<T> => etcdctlJson<T>(t.endpoints, args, stdin === undefined ? {} : { stdin });
const put = async (t: Target, key: string, value: string, ...flags: string[]): Promise<number> => revisionOf((await json<PutOutput>(t, ['put', key, value, ...flags])).header);

/** An etcdctl run that must fail: its exit code and its `Error:` lines. */
async function failing(t: Target, args: readonly string[]): Promise<{ code: number | null; errors: string[] }> {
  const r = await etcdctl(t.endpoints, args);
  assert.notEqual(r.code, 0, `etcdctl ${args.join(' ')} succeeded but must fail; stdout: ${r.stdout}`);
  return { code: r.code, errors: errorLines(r.stderr) };
}

describe('put and get', () => {
  testBoth(targets, 'put prints OK, get prints key and value, a missing key prints nothing and exits 0', async (t) => {
    const p = uniquePrefix('put');
    assert.equal(await ok(t, ['put', `${p}k`, 'hello world']), 'OK\n');
    assert.equal(await ok(t, ['get', `${p}k`]), `${p}k\nhello world\n`);
    assert.equal(await ok(t, ['get', `${p}missing`]), '');
    const out = await json<RangeOutput>(t, ['get', `${p}missing`]);
    assert.deepEqual(kvs(out), []);
    assert.equal(out.count ?? 0, 0);
  });

  testBoth(targets, 'put --prev-kv prints the value it replaced with its versions; the first put has none', async (t) => {
    const p = uniquePrefix('prevkv');
    const first = await json<PutOutput>(t, ['put', `${p}k`, 'v1', '--prev-kv']);
    assert.equal(first.prev_kv, undefined);
    const r1 = revisionOf(first.header);
    const second = await json<PutOutput>(t, ['put', `${p}k`, 'v2', '--prev-kv']);
    assert.ok(second.prev_kv !== undefined, 'the second put must return the previous key-value');
    assert.deepEqual(kvs({ kvs: [second.prev_kv] }), [{ key: `${p}k`, value: 'v1', createRevision: r1, modRevision: r1, version: 1 }]);
    assert.equal(await ok(t, ['put', `${p}k`, 'v3', '--prev-kv']), `OK\n${p}k\nv2\n`);
  });

  testBoth(targets, 'get --prefix: the keys under the prefix only, in key order, with create/mod revisions and versions from the puts', async (t) => {
    const p = uniquePrefix('prefix');
    const r1 = await put(t, `${p}a/1`, 'one');
    const r2 = await put(t, `${p}a/2`, 'two');
    const r3 = await put(t, `${p}a/1`, 'uno');
    await put(t, `${p}a0`, 'outside'); // shares the text "a" but not the prefix "a/"
    await put(t, `${p}a.`, 'outside too'); // "." sorts right before "/"
    assert.deepEqual([r2 - r1, r3 - r2], [1, 1], 'every put raises the revision by one');
    const out = await json<RangeOutput>(t, ['get', `${p}a/`, '--prefix']);
    assert.deepEqual(kvs(out), [
      { key: `${p}a/1`, value: 'uno', createRevision: r1, modRevision: r3, version: 2 },
      { key: `${p}a/2`, value: 'two', createRevision: r2, modRevision: r2, version: 1 },
    ]);
    assert.equal(out.count, 2);
    assert.equal(out.more ?? false, false);
    assert.equal(await ok(t, ['get', `${p}a/`, '--prefix']), `${p}a/1\nuno\n${p}a/2\ntwo\n`);
    // A range [KEY, END): END itself is out.
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}a/1`, `${p}a/2`])).map((k) => k.key), [`${p}a/1`]);
  });

  testBoth(targets, 'get --limit returns the first N in order, says there are more, and counts them all', async (t) => {
    const p = uniquePrefix('limit');
    for (const k of ['c', 'a', 'd', 'b']) await put(t, `${p}${k}`, k.toUpperCase());
    const out = await json<RangeOutput>(t, ['get', p, '--prefix', '--limit', '2']);
    assert.deepEqual(kvs(out).map((k) => [k.key, k.value]), [[`${p}a`, 'A'], [`${p}b`, 'B']]);
    assert.equal(out.more, true);
    assert.equal(out.count, 4);
    const all = await json<RangeOutput>(t, ['get', p, '--prefix', '--limit', '4']);
    assert.equal(kvs(all).length, 4);
    assert.equal(all.more ?? false, false);
  });

  testBoth(targets, 'get --rev reads the store as it was at that revision; a future revision is an error', async (t) => {
    const p = uniquePrefix('rev');
    const r1 = await put(t, `${p}k`, 'v1');
    const r2 = await put(t, `${p}k`, 'v2');
    const r3 = revisionOf((await json<DeleteOutput>(t, ['del', `${p}k`])).header);
    const r4 = await put(t, `${p}k`, 'v4');
    assert.deepEqual([r2 - r1, r3 - r2, r4 - r3], [1, 1, 1]);
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}k`, '--rev', String(r1)])), [{ key: `${p}k`, value: 'v1', createRevision: r1, modRevision: r1, version: 1 }]);
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}k`, '--rev', String(r2)])), [{ key: `${p}k`, value: 'v2', createRevision: r1, modRevision: r2, version: 2 }]);
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}k`, '--rev', String(r3)])), [], 'deleted at r3');
    // Re-created: a new life, version 1 again, a new create revision.
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}k`])), [{ key: `${p}k`, value: 'v4', createRevision: r4, modRevision: r4, version: 1 }]);
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}k`, '--rev', String(r1 - 1)])), [], 'not yet written before r1');
    // The header of a read in the past still carries the current revision.
    assert.ok(revisionOf((await json<RangeOutput>(t, ['get', `${p}k`, '--rev', String(r1)])).header) >= r4);
    const future = await failing(t, ['get', `${p}k`, '--rev', String(r4 + 1000)]);
    assert.equal(future.code, 1);
    assert.deepEqual(future.errors, ['etcdserver: mvcc: required revision is a future revision']);
  });

  testBoth(targets, 'get --keys-only prints keys without values; --print-value-only prints values alone', async (t) => {
    const p = uniquePrefix('only');
    const r1 = await put(t, `${p}x`, 'X value');
    await put(t, `${p}y`, 'Y value');
    const keysOnly = await json<RangeOutput>(t, ['get', p, '--prefix', '--keys-only']);
    assert.deepEqual(keysOnly.kvs?.map((k) => [b64(k.key), k.value]), [[`${p}x`, undefined], [`${p}y`, undefined]]);
    // Keys only still carries the revisions and version.
    assert.equal(keysOnly.kvs?.[0]?.create_revision, r1);
    assert.equal(keysOnly.kvs?.[0]?.version, 1);
    assert.equal(await ok(t, ['get', p, '--prefix', '--keys-only']), `${p}x\n\n${p}y\n\n`);
    assert.equal(await ok(t, ['get', p, '--prefix', '--print-value-only']), 'X value\nY value\n');
  });

  testBoth(targets, 'get --sort-by KEY, VALUE, CREATE, MODIFY and VERSION, ascending and descending', async (t) => {
    const p = uniquePrefix('sort');
    // Created in the order b, c, a; values against key order; then a modified twice, b once.
    await put(t, `${p}b`, '2');
    await put(t, `${p}c`, '1');
    await put(t, `${p}a`, '3');
    await put(t, `${p}a`, '3');
    await put(t, `${p}b`, '2');
    await put(t, `${p}a`, '3');
    const order = async (...flags: string[]): Promise<string> => kvs(await json<RangeOutput>(t, ['get', p, '--prefix', ...flags])).map((k) => k.key.slice(p.length)).join('');
    assert.equal(await order('--sort-by=KEY', '--order=ASCEND'), 'abc');
    assert.equal(await order('--sort-by=KEY', '--order=DESCEND'), 'cba');
    assert.equal(await order('--sort-by=VALUE', '--order=ASCEND'), 'cba');
    assert.equal(await order('--sort-by=VALUE', '--order=DESCEND'), 'abc');
    assert.equal(await order('--sort-by=CREATE', '--order=ASCEND'), 'bca');
    assert.equal(await order('--sort-by=CREATE', '--order=DESCEND'), 'acb');
    assert.equal(await order('--sort-by=MODIFY', '--order=ASCEND'), 'cba');
    assert.equal(await order('--sort-by=MODIFY', '--order=DESCEND'), 'abc');
    assert.equal(await order('--sort-by=VERSION', '--order=ASCEND'), 'cba');
    assert.equal(await order('--sort-by=VERSION', '--order=DESCEND'), 'abc');
    // A limit applies after the sort.
    assert.equal(await order('--sort-by=CREATE', '--order=DESCEND', '--limit=2'), 'ac');
  });

  testBoth(targets, 'put --ignore-value keeps the value, --ignore-lease the lease; either on a missing key fails with "key not found"', async (t) => {
    const p = uniquePrefix('ignore');
    const lease = idOf((await json<{ ID: Id }>(t, ['lease', 'grant', '60'])).ID);
    const leaseHex = BigInt(lease).toString(16);
    const r1 = await put(t, `${p}k`, 'v1', `--lease=${leaseHex}`);
    const state = async (): Promise<[string, number, number, string]> => {
      const k = (await json<RangeOutput>(t, ['get', `${p}k`])).kvs?.[0];
      return [b64(k?.value), k?.version ?? 0, k?.mod_revision ?? 0, idOf(k?.lease)];
    };
    // A put that keeps the value still writes: a new version and revision. Without --lease (or
    // --ignore-lease) the key leaves its lease, as any put without a lease does.
    const r2 = revisionOf((await json<PutOutput>(t, ['put', `${p}k`, '--ignore-value'])).header);
    assert.equal(r2, r1 + 1);
    assert.deepEqual(await state(), ['v1', 2, r2, '0']);
    const r3 = await put(t, `${p}k`, 'v3', `--lease=${leaseHex}`);
    const r4 = revisionOf((await json<PutOutput>(t, ['put', `${p}k`, 'v4', '--ignore-lease'])).header);
    assert.equal(r4, r3 + 1);
    assert.deepEqual(await state(), ['v4', 4, r4, lease]);
    const r5 = revisionOf((await json<PutOutput>(t, ['put', `${p}k`, '--ignore-value', '--ignore-lease'])).header);
    assert.deepEqual(await state(), ['v4', 5, r5, lease]);
    for (const args of [['put', `${p}missing`, '--ignore-value'], ['put', `${p}missing`, 'v', '--ignore-lease']]) {
      const r = await failing(t, args);
      assert.deepEqual(r.errors, ['etcdserver: key not found'], `etcdctl ${args.join(' ')}`);
    }
    await ok(t, ['lease', 'revoke', leaseHex]);
  });

  testBoth(targets, 'get --consistency=s on every member soon sees a write made through another', async (t) => {
    const p = uniquePrefix('serializable');
    await etcdctlOk(t.endpoints.slice(0, 1), ['put', `${p}k`, 'everywhere']);
    for (const endpoint of t.endpoints) {
      await pollUntil(`${endpoint} to serve the write from its own state`, 10_000, async () => ((await etcdctlOk([endpoint], ['get', `${p}k`, '--consistency=s', '--print-value-only'])) === 'everywhere\n' ? true : undefined), 100);
    }
    // And a linearizable read on each sees it at once.
    for (const endpoint of t.endpoints) assert.equal(await etcdctlOk([endpoint], ['get', `${p}k`, '--print-value-only']), 'everywhere\n');
  });

  testBoth(targets, 'get --from-key returns every key from KEY on, in order', async (t) => {
    const p = uniquePrefix('fromkey');
    for (const k of ['a', 'b', 'c']) await put(t, `${p}${k}`, k);
    const keys = kvs(await json<RangeOutput>(t, ['get', `${p}b`, '--from-key', '--keys-only'])).map((k) => k.key);
    // Other tests' keys sort after this prefix too; only the order and the start are this test's.
    assert.deepEqual(keys.slice(0, 2), [`${p}b`, `${p}c`]);
    assert.ok(!keys.includes(`${p}a`));
    assert.deepEqual([...keys].sort(), keys, 'in key order');
  });
});

describe('del', () => {
  testBoth(targets, 'del prints how many keys it deleted: 1, then 0 for a key already gone', async (t) => {
    const p = uniquePrefix('del');
    await put(t, `${p}k`, 'v');
    assert.equal(await ok(t, ['del', `${p}k`]), '1\n');
    assert.equal(await ok(t, ['del', `${p}k`]), '0\n');
    assert.equal(await ok(t, ['get', `${p}k`]), '');
  });

  testBoth(targets, 'del --prefix deletes exactly the keys under the prefix, in one revision', async (t) => {
    const p = uniquePrefix('delprefix');
    for (const k of ['d/1', 'd/2', 'd/3', 'd0', 'e']) await put(t, `${p}${k}`, 'v');
    const before = revisionOf((await json<RangeOutput>(t, ['get', p, '--prefix'])).header);
    const out = await json<DeleteOutput>(t, ['del', `${p}d/`, '--prefix']);
    assert.equal(out.deleted, 3);
    assert.equal(revisionOf(out.header), before + 1, 'one delete of three keys is one revision');
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', p, '--prefix'])).map((k) => k.key), [`${p}d0`, `${p}e`]);
  });

  testBoth(targets, 'del --prev-kv prints the deleted key-values with their versions', async (t) => {
    const p = uniquePrefix('delprev');
    const r1 = await put(t, `${p}a`, 'A1');
    const r2 = await put(t, `${p}a`, 'A2');
    const r3 = await put(t, `${p}b`, 'B');
    const out = await json<DeleteOutput>(t, ['del', p, '--prefix', '--prev-kv']);
    assert.equal(out.deleted, 2);
    assert.deepEqual(kvs({ kvs: out.prev_kvs ?? [] }), [
      { key: `${p}a`, value: 'A2', createRevision: r1, modRevision: r2, version: 2 },
      { key: `${p}b`, value: 'B', createRevision: r3, modRevision: r3, version: 1 },
    ]);
    await put(t, `${p}c`, 'C');
    assert.equal(await ok(t, ['del', `${p}c`, '--prev-kv']), `1\n${p}c\nC\n`);
  });

  testBoth(targets, 'del KEY END deletes the range [KEY, END)', async (t) => {
    const p = uniquePrefix('delrange');
    for (const k of ['a', 'b', 'c', 'd']) await put(t, `${p}${k}`, k);
    assert.equal(await ok(t, ['del', `${p}b`, `${p}d`]), '2\n');
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', p, '--prefix'])).map((k) => k.value), ['a', 'd']);
  });
});

describe('txn', () => {
  // etcdctl txn reads compares, a blank line, success ops, a blank line, failure ops, a blank line.
  const script = (compares: readonly string[], success: readonly string[], failure: readonly string[]): string => `${[...compares, '', ...success, '', ...failure, ''].join('\n')}\n`;

  testBoth(targets, 'compares on value and version that hold run the success ops and print SUCCESS with their results', async (t) => {
    const p = uniquePrefix('txn-ok');
    await put(t, `${p}k`, 'v1');
    await put(t, `${p}k`, 'v2');
    const text = script([`value("${p}k") = "v2"`, `version("${p}k") = "2"`], [`put ${p}ok yes`, `get ${p}k`], [`put ${p}bad no`]);
    assert.equal(await ok(t, ['txn'], text), `SUCCESS\n\nOK\n\n${p}k\nv2\n`);
    assert.equal(await ok(t, ['get', `${p}ok`, '--print-value-only']), 'yes\n');
    assert.equal(await ok(t, ['get', `${p}bad`]), '');
  });

  testBoth(targets, 'a compare that fails runs the failure ops; -w json says succeeded false and carries their results', async (t) => {
    const p = uniquePrefix('txn-fail');
    const rk = await put(t, `${p}k`, 'v1');
    const text = script([`value("${p}k") = "other"`], [`put ${p}ok yes`], [`put ${p}bad no`, `get ${p}k`]);
    const out = await json<TxnOutput>(t, ['txn'], text);
    assert.equal(out.succeeded ?? false, false);
    const r = revisionOf(out.header);
    assert.equal(r, rk + 1, 'the failure branch put one key: one revision');
    assert.equal(out.responses?.length, 2);
    assert.ok(out.responses?.[0]?.Response.ResponsePut !== undefined, 'first result: the put');
    assert.deepEqual(kvs(out.responses?.[1]?.Response.ResponseRange ?? {}), [{ key: `${p}k`, value: 'v1', createRevision: rk, modRevision: rk, version: 1 }]);
    assert.equal(await ok(t, ['get', `${p}ok`]), '');
    assert.equal(await ok(t, ['get', `${p}bad`, '--print-value-only']), 'no\n');
    assert.equal(await ok(t, ['txn'], script([`value("${p}k") = "other"`], [], [])), 'FAILURE\n');
  });

  testBoth(targets, 'compares on create and mod revisions (=, <, >, !=) and on a missing key (create = 0)', async (t) => {
    const p = uniquePrefix('txn-rev');
    const rc = await put(t, `${p}k`, 'a');
    const rm = await put(t, `${p}k`, 'b');
    const holds = async (...compares: string[]): Promise<boolean> => (await json<TxnOutput>(t, ['txn'], script(compares, [], []))).succeeded ?? false;
    assert.equal(await holds(`create("${p}k") = "${rc}"`, `mod("${p}k") = "${rm}"`), true);
    assert.equal(await holds(`create("${p}k") = "${rm}"`), false);
    assert.equal(await holds(`mod("${p}k") > "${rc}"`, `mod("${p}k") < "${rm + 1}"`), true);
    assert.equal(await holds(`mod("${p}k") < "${rm}"`), false);
    assert.equal(await holds(`create("${p}k") != "${rm}"`), true);
    assert.equal(await holds(`version("${p}k") > "1"`, `version("${p}k") < "3"`), true);
    assert.equal(await holds(`value("${p}k") != "a"`, `value("${p}k") > "a"`, `value("${p}k") < "c"`), true);
    // A key that does not exist has create, mod and version 0.
    assert.equal(await holds(`create("${p}missing") = "0"`, `version("${p}missing") = "0"`, `mod("${p}missing") = "0"`), true);
    // Every compare must hold: one false one fails the whole.
    assert.equal(await holds(`value("${p}k") = "b"`, `version("${p}k") = "7"`), false);
  });

  testBoth(targets, 'a txn of several puts and a delete is one revision; the ops see each other in order', async (t) => {
    const p = uniquePrefix('txn-atomic');
    const r0 = await put(t, `${p}gone`, 'x');
    const out = await json<TxnOutput>(t, ['txn'], script([], [`put ${p}a 1`, `put ${p}b 2`, `del ${p}gone`, `get ${p} --prefix`], []));
    assert.equal(out.succeeded, true, 'no compares: the success branch');
    const r = revisionOf(out.header);
    assert.equal(r, r0 + 1);
    assert.equal(out.responses?.[2]?.Response.ResponseDeleteRange?.deleted, 1);
    const seen = kvs(out.responses?.[3]?.Response.ResponseRange ?? {});
    assert.deepEqual(seen, [
      { key: `${p}a`, value: '1', createRevision: r, modRevision: r, version: 1 },
      { key: `${p}b`, value: '2', createRevision: r, modRevision: r, version: 1 },
    ]);
  });
});

describe('headers', () => {
  testBoth(targets, 'the revision rises by exactly one per put, delete and txn; reads and no-op deletes leave it', async (t) => {
    const p = uniquePrefix('hdr');
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) seen.push(await put(t, `${p}k${i % 2}`, String(i)));
    assert.deepEqual(seen.map((r) => r - seen[0]!), [0, 1, 2, 3, 4]);
    const last = seen[4]!;
    assert.equal(revisionOf((await json<RangeOutput>(t, ['get', `${p}k0`])).header), last, 'a read: the current revision');
    assert.equal(revisionOf((await json<DeleteOutput>(t, ['del', `${p}none`])).header), last, 'deleting nothing adds no revision');
    assert.equal(revisionOf((await json<DeleteOutput>(t, ['del', `${p}k`, '--prefix'])).header), last + 1, 'two keys in one delete: one revision');
    const failed = await json<TxnOutput>(t, ['txn'], `value("${p}none") = "x"\n\n\n\n`);
    assert.equal(revisionOf(failed.header), last + 1, 'a txn that writes nothing adds no revision');
  });

  testBoth(targets, 'every header names the cluster, the member that answered and the raft term', async (t) => {
    const p = uniquePrefix('hdr-ids');
    // Ids differ between clusters and are not compared: only that they are there, and the
    // same cluster id from every member.
    const clusterIds = new Set<string>();
    for (const endpoint of t.endpoints) {
      const out = await etcdctlJson<PutOutput>([endpoint], ['put', `${p}k`, 'v']);
      const h: Header = out.header;
      assert.notEqual(idOf(h.cluster_id), '0');
      assert.notEqual(idOf(h.member_id), '0');
      assert.ok((h.raft_term ?? 0) > 0, `raft_term ${h.raft_term}`);
      clusterIds.add(idOf(h.cluster_id));
    }
    assert.equal(clusterIds.size, 1, 'one cluster id');
  });
});

interface MemberListOutput {
  readonly header: Header;
  readonly members: readonly { readonly ID: Id; readonly name?: string; readonly peerURLs?: readonly string[]; readonly clientURLs?: readonly string[]; readonly isLearner?: boolean }[];
}

interface StatusOutput {
  readonly Endpoint: string;
  readonly Status: {
    readonly header: Header;
    readonly version?: string;
    readonly dbSize?: number;
    readonly leader?: Id;
    readonly raftIndex?: number;
    readonly raftTerm?: number;
    readonly raftAppliedIndex?: number;
  };
}

describe('member list', () => {
  testBoth(targets, 'member list -w json: three voting members with their names, peer URLs and client URLs (the etcd endpoints)', async (t) => {
    const out = await json<MemberListOutput>(t, ['member', 'list']);
    assert.equal(out.members.length, 3);
    const byName = new Map(out.members.map((m) => [m.name ?? '', m]));
    assert.deepEqual([...byName.keys()].sort(), ['n1', 'n2', 'n3']);
    for (const member of t.members) {
      const m = byName.get(member.name)!;
      assert.deepEqual(m.peerURLs, [member.peerUrl], `${member.name}'s peer URLs`);
      // The client URLs are where etcd clients find the member: its etcd v3 endpoint.
      assert.deepEqual(m.clientURLs, [`http://${member.endpoint}`], `${member.name}'s client URLs`);
      assert.equal(m.isLearner ?? false, false);
    }
    const ids = out.members.map((m) => idOf(m.ID));
    assert.equal(new Set(ids).size, 3, 'distinct member ids');
    assert.ok(!ids.includes('0'));
    assert.ok(ids.includes(idOf(out.header.member_id)), 'the header names a member of the list');
    assert.equal(await ok(t, ['member', 'list']).then((s) => s.trim().split('\n').length), 3);
  });
});

describe('endpoint status', () => {
  testBoth(targets, 'endpoint status -w json: every member, one leader among them, the raft term, the revision and raft index', async (t) => {
    const p = uniquePrefix('status');
    const r = await put(t, `${p}k`, 'v');
    const members = await json<MemberListOutput>(t, ['member', 'list']);
    const memberIds = members.members.map((m) => idOf(m.ID));
    // A follower applies the put a moment after the leader answered it: wait (bounded) until
    // every member's store has it.
    const statuses = await pollUntil(`every member at revision ${r}`, 10_000, async () => {
      const all = await json<StatusOutput[]>(t, ['endpoint', 'status']);
      return all.every((s) => (s.Status.header.revision ?? 0) >= r) ? all : undefined;
    }, 100);
    assert.deepEqual(statuses.map((s) => s.Endpoint), [...t.endpoints]);
    assert.deepEqual(statuses.map((s) => idOf(s.Status.header.member_id)).sort(), [...memberIds].sort(), 'each endpoint is one member');
    const leaders = new Set(statuses.map((s) => idOf(s.Status.leader)));
    assert.equal(leaders.size, 1, 'every member names the same leader');
    assert.ok(memberIds.includes([...leaders][0]!), 'the leader is a member');
    for (const s of statuses) {
      assert.ok((s.Status.raftTerm ?? 0) > 0);
      assert.equal(s.Status.header.raft_term, s.Status.raftTerm, 'the header carries the same term');
      // Not compared with the revision: how many writes share a raft entry is the server's affair.
      assert.ok((s.Status.raftIndex ?? 0) > 0, 'a raft index');
      assert.ok((s.Status.raftAppliedIndex ?? 0) > 0 && (s.Status.raftAppliedIndex ?? 0) <= (s.Status.raftIndex ?? 0), 'applied ≤ committed index');
      assert.ok(typeof s.Status.version === 'string' && s.Status.version !== '', 'a version string (not compared)');
    }
  });

  testBoth(targets, 'endpoint health: every member healthy', async (t) => {
    const health = await json<{ endpoint: string; health: boolean; error?: string }[]>(t, ['endpoint', 'health']);
    assert.deepEqual(health.map((h) => [h.endpoint, h.health, h.error ?? '']).sort(), [...t.endpoints].sort().map((e) => [e, true, '']));
  });
});

// Last in this file: compaction is cluster-wide and forgets the past of every key.
describe('compaction', () => {
  testBoth(targets, 'compaction REV: reads before it fail with the compacted error, at and after it still work; again or in the future fail', async (t) => {
    const p = uniquePrefix('compact');
    const r1 = await put(t, `${p}k`, 'v1');
    const r2 = await put(t, `${p}k`, 'v2');
    const r3 = await put(t, `${p}k`, 'v3');
    assert.equal(await ok(t, ['compaction', String(r2)]), `compacted revision ${r2}\n`);
    const old = await failing(t, ['get', `${p}k`, '--rev', String(r1)]);
    assert.equal(old.code, 1);
    assert.deepEqual(old.errors, ['etcdserver: mvcc: required revision has been compacted']);
    assert.equal(await ok(t, ['get', `${p}k`, '--rev', String(r2), '--print-value-only']), 'v2\n');
    assert.equal(await ok(t, ['get', `${p}k`, '--print-value-only']), 'v3\n');
    // The history kept its versions: the key was created at r1 and is at version 3.
    assert.deepEqual(kvs(await json<RangeOutput>(t, ['get', `${p}k`])), [{ key: `${p}k`, value: 'v3', createRevision: r1, modRevision: r3, version: 3 }]);
    const again = await failing(t, ['compaction', String(r2)]);
    assert.deepEqual(again.errors, ['etcdserver: mvcc: required revision has been compacted']);
    const future = await failing(t, ['compaction', String(r3 + 1000)]);
    assert.deepEqual(future.errors, ['etcdserver: mvcc: required revision is a future revision']);
  });

  testBoth(targets, 'a watch from a compacted revision is cancelled with the compacted error', async (t) => {
    const p = uniquePrefix('compact-watch');
    const r1 = await put(t, `${p}k`, 'v1');
    const r2 = await put(t, `${p}k`, 'v2');
    await ok(t, ['compaction', String(r2)]);
    const r = await etcdctl(t.endpoints, ['watch', `${p}k`, '--rev', String(r1)], { timeoutMs: 15_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /watch was canceled \(etcdserver: mvcc: required revision has been compacted\)/);
  });
});
