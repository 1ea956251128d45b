// etcdctl's long-running and lease-bound commands against a real etcd cluster and then a raftkv
// cluster with the etcd v3 API, the same expectations on both (both.ts): watch (from a revision,
// from now, by prefix, with previous values, on every member), leases (grant, keep-alive --once,
// timetolive --keys, list, revoke, keys bound to a lease vanishing on revoke and on expiry), lock
// (a command run holding it; a second waits) and elect (a campaign, a second in line, `elect -l`
// following the leader). Background etcdctl runs are children killed at the end of each test.
//
// Not compared: lease ids (each server picks its own), member ids, absolute revisions.
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil, sleep } from '../../src/harness/index.js';
import { Background, b64, etcdctl, etcdctlJson, etcdctlOk } from './etcdctl.js';
import { testBoth } from './both.js';
import { errorLines, idOf, kvs, revisionOf, type DeleteOutput, type Id, type PutOutput, type RangeOutput } from './shapes.js';
import { Targets, uniquePrefix, type Target } from './targets.js';
import { watchEvents, type WatchEvent } from './watch-events.js';

const targets = new Targets();
after(() => targets.stopAll());

const ok = (t: Target, args: readonly string[]): Promise<string> => etcdctlOk(t.endpoints, args);
const json = <T>(t: Target, args: readonly string[]): Promise<T> => etcdctlJson<T>(t.endpoints, args);
const put = async (t: Target, key: string, value: string, ...flags: string[]): Promise<number> => revisionOf((await json<PutOutput>(t, ['put', key, value, ...flags])).header);
const keysUnder = async (t: Target, prefix: string): Promise<string[]> => kvs(await json<RangeOutput>(t, ['get', prefix, '--prefix'])).map((k) => k.key);

/** Runs `check` with a Background whose etcdctl runs are all killed afterwards, whatever happens. */
async function withBackground(t: Target, check: (bg: Background) => Promise<void>): Promise<void> {
  const bg = new Background(t.endpoints);
  try {
    await check(bg);
  } finally {
    await bg.stopAll();
  }
}

const eventsAfter = (events: readonly WatchEvent[], count: number): string => JSON.stringify(events.slice(0, count));

describe('watch', () => {
  testBoth(targets, 'watch KEY --rev R -w json replays the puts and the delete since R, then follows new ones live', async (t) => {
    const p = uniquePrefix('watch-rev');
    const r1 = await put(t, `${p}k`, 'v1');
    const r2 = await put(t, `${p}k`, 'v2');
    const r3 = revisionOf((await json<DeleteOutput>(t, ['del', `${p}k`])).header);
    await withBackground(t, async (bg) => {
      const w = bg.start(['watch', `${p}k`, '--rev', String(r1), '-w', 'json']);
      await w.waitFor('the three past events', (out) => watchEvents(out).length >= 3);
      const r4 = await put(t, `${p}k`, 'v4');
      await w.waitFor('the live event', (out) => watchEvents(out).length >= 4);
      await sleep(200); // nothing more may come
      assert.deepEqual(watchEvents(w.stdout), [
        { type: 'PUT', key: `${p}k`, value: 'v1', createRevision: r1, modRevision: r1, version: 1 },
        { type: 'PUT', key: `${p}k`, value: 'v2', createRevision: r1, modRevision: r2, version: 2 },
        // A delete event carries the key and the revision of the delete only.
        { type: 'DELETE', key: `${p}k`, value: '', createRevision: 0, modRevision: r3, version: 0 },
        { type: 'PUT', key: `${p}k`, value: 'v4', createRevision: r4, modRevision: r4, version: 1 },
      ]);
    });
  });

  testBoth(targets, 'watch --prefix sees every key under the prefix and none outside it; plain output is TYPE, key, value lines', async (t) => {
    const p = uniquePrefix('watch-prefix');
    const r0 = await put(t, `${p}start`, '0');
    await withBackground(t, async (bg) => {
      const w = bg.start(['watch', `${p}in/`, '--prefix', '--rev', String(r0)]);
      await put(t, `${p}in/a`, 'A');
      await put(t, `${p}in0`, 'outside');
      await put(t, `${p}other`, 'outside');
      await put(t, `${p}in/b`, 'B');
      await ok(t, ['del', `${p}in/a`]);
      const expected = `PUT\n${p}in/a\nA\nPUT\n${p}in/b\nB\nDELETE\n${p}in/a\n\n`;
      await w.waitFor('two puts and a delete', (out) => out.length >= expected.length);
      await sleep(200);
      assert.equal(w.stdout, expected);
    });
  });

  testBoth(targets, 'watch without --rev starts at the present: no earlier event, then every later one', async (t) => {
    const p = uniquePrefix('watch-now');
    await put(t, `${p}before`, 'old');
    await withBackground(t, async (bg) => {
      const w = bg.start(['watch', p, '--prefix', '-w', 'json']);
      // The watch is in place once it reports a write made after it started: write a marker
      // until it shows up (bounded), then the events of the test.
      await pollUntil('the watch to be in place', 15_000, async () => {
        if (watchEvents(w.stdout).some((e) => e.key === `${p}marker`)) return true;
        await put(t, `${p}marker`, 'm');
        await sleep(150);
        return undefined;
      });
      const markers = watchEvents(w.stdout).length;
      const ra = await put(t, `${p}a`, '1');
      const rb = await put(t, `${p}b`, '2');
      await w.waitFor('the two puts', (out) => watchEvents(out).length >= markers + 2);
      const events = watchEvents(w.stdout);
      assert.ok(events.every((e) => e.key !== `${p}before`), `an event from before the watch: ${eventsAfter(events, 10)}`);
      // Markers may still trickle in (one written while the first was on its way); only the
      // order and the content of the test's own events count.
      assert.deepEqual(events.filter((e) => e.key !== `${p}marker`), [
        { type: 'PUT', key: `${p}a`, value: '1', createRevision: ra, modRevision: ra, version: 1 },
        { type: 'PUT', key: `${p}b`, value: '2', createRevision: rb, modRevision: rb, version: 1 },
      ]);
    });
  });

  testBoth(targets, 'watch --prev-kv: each event carries the value it replaced or deleted', async (t) => {
    const p = uniquePrefix('watch-prev');
    const r1 = await put(t, `${p}k`, 'first');
    await put(t, `${p}k`, 'second');
    await ok(t, ['del', `${p}k`]);
    await withBackground(t, async (bg) => {
      const w = bg.start(['watch', `${p}k`, '--rev', String(r1), '--prev-kv', '-w', 'json']);
      await w.waitFor('three events', (out) => watchEvents(out).length >= 3);
      assert.deepEqual(watchEvents(w.stdout).map((e) => [e.type, e.value, e.prevValue]), [
        ['PUT', 'first', undefined],
        ['PUT', 'second', 'first'],
        ['DELETE', '', 'second'],
      ]);
    });
  });

  testBoth(targets, 'a watch on each member sees the same events in the same order, a txn\'s writes as one revision', async (t) => {
    const p = uniquePrefix('watch-members');
    const r0 = await put(t, `${p}start`, '0');
    {
      const watchers = t.endpoints.map((endpoint) => new Background([endpoint]).start(['watch', p, '--prefix', '--rev', String(r0 + 1), '-w', 'json']));
      try {
        const r1 = await put(t, `${p}x`, '1');
        const txn = await etcdctl(t.endpoints, ['txn'], { stdin: `\nput ${p}y 2\nput ${p}z 3\n\n\n` });
        assert.equal(txn.code, 0, txn.stderr);
        const r3 = await put(t, `${p}x`, '4');
        for (const w of watchers) await w.waitFor('four events', (out) => watchEvents(out).length >= 4);
        const expected: WatchEvent[] = [
          { type: 'PUT', key: `${p}x`, value: '1', createRevision: r1, modRevision: r1, version: 1 },
          { type: 'PUT', key: `${p}y`, value: '2', createRevision: r1 + 1, modRevision: r1 + 1, version: 1 },
          { type: 'PUT', key: `${p}z`, value: '3', createRevision: r1 + 1, modRevision: r1 + 1, version: 1 },
          { type: 'PUT', key: `${p}x`, value: '4', createRevision: r1, modRevision: r3, version: 2 },
        ];
        assert.equal(r3, r1 + 2);
        for (const [i, w] of watchers.entries()) assert.deepEqual(watchEvents(w.stdout), expected, `the watch on member ${i + 1}`);
      } finally {
        await Promise.all(watchers.map((w) => w.stop('SIGKILL', 0)));
      }
    }
  });
});

interface GrantOutput {
  readonly ID: Id;
  readonly TTL: number;
  readonly Error?: string;
}

interface TimeToLiveOutput {
  readonly id: Id;
  readonly ttl: number;
  readonly 'granted-ttl': number;
  readonly keys: readonly string[] | null;
}

/**
 * A lease id as etcdctl prints it and takes it: hex, zero-padded to 16 digits (etcdctl's %016x;
 * etcd's ids use the high bits, raftkv's are 53-bit, so only raftkv's show the padding).
 */
const hex = (id: Id): string => BigInt(idOf(id)).toString(16).padStart(16, '0');

describe('lease', () => {
  testBoth(targets, 'lease grant TTL: an id and the TTL asked for; timetolive: granted-ttl and a remaining ttl no larger', async (t) => {
    const grant = await json<GrantOutput>(t, ['lease', 'grant', '30']);
    assert.equal(grant.TTL, 30);
    assert.equal(grant.Error ?? '', '');
    assert.notEqual(idOf(grant.ID), '0');
    const ttl = await json<TimeToLiveOutput>(t, ['lease', 'timetolive', hex(grant.ID)]);
    assert.equal(idOf(ttl.id), idOf(grant.ID));
    assert.equal(ttl['granted-ttl'], 30);
    assert.ok(ttl.ttl > 20 && ttl.ttl <= 30, `remaining ${ttl.ttl}`);
    assert.match(await ok(t, ['lease', 'grant', '30']), /^lease [0-9a-f]+ granted with TTL\(30s\)\n$/);
    await ok(t, ['lease', 'revoke', hex(grant.ID)]);
  });

  testBoth(targets, 'put --lease binds keys: get shows the lease, timetolive --keys lists them, keep-alive --once renews to the full TTL', async (t) => {
    const p = uniquePrefix('lease-keys');
    const grant = await json<GrantOutput>(t, ['lease', 'grant', '20']);
    const id = hex(grant.ID);
    await put(t, `${p}a`, 'A', `--lease=${id}`);
    await put(t, `${p}b`, 'B', `--lease=${id}`);
    await put(t, `${p}free`, 'F');
    const got = await json<RangeOutput>(t, ['get', p, '--prefix']);
    assert.deepEqual(got.kvs?.map((k) => [b64(k.key), idOf(k.lease)]), [[`${p}a`, idOf(grant.ID)], [`${p}b`, idOf(grant.ID)], [`${p}free`, '0']]);
    const ttl = await json<TimeToLiveOutput>(t, ['lease', 'timetolive', id, '--keys']);
    assert.deepEqual((ttl.keys ?? []).map(b64).sort(), [`${p}a`, `${p}b`]);
    // Wait until the remaining TTL has visibly dropped, then renew.
    // (Three seconds down, so a renewal is told apart from a slow machine's delays below.)
    await pollUntil('the lease to lose three seconds', 8000, async () => ((await json<TimeToLiveOutput>(t, ['lease', 'timetolive', id])).ttl <= 17 ? true : undefined), 250);
    const renewed = await json<GrantOutput>(t, ['lease', 'keep-alive', '--once', id]);
    assert.equal(idOf(renewed.ID), idOf(grant.ID));
    assert.equal(renewed.TTL, 20);
    const after = await json<TimeToLiveOutput>(t, ['lease', 'timetolive', id]);
    assert.ok(after.ttl >= 18, `remaining after keep-alive ${after.ttl}`);
    assert.equal(await ok(t, ['lease', 'keep-alive', '--once', id]), `lease ${id} keepalived with TTL(20)\n`);
    // etcd lists a lease's keys in no particular order (a map's).
    const line = await ok(t, ['lease', 'timetolive', id, '--keys']);
    const m = new RegExp(`^lease ${id} granted with TTL\\(20s\\), remaining\\((18|19|20)s\\), attached keys\\(\\[(.*)\\]\\)\\n$`).exec(line);
    assert.ok(m !== null, line);
    assert.deepEqual(m[2]!.split(' ').sort(), [`${p}a`, `${p}b`]);
    await ok(t, ['lease', 'revoke', id]);
  });

  testBoth(targets, 'lease list names every lease granted and not revoked', async (t) => {
    const a = await json<GrantOutput>(t, ['lease', 'grant', '60']);
    const b = await json<GrantOutput>(t, ['lease', 'grant', '60']);
    const listed = (await json<{ leases?: readonly { id: Id }[] }>(t, ['lease', 'list'])).leases?.map((l) => idOf(l.id)) ?? [];
    assert.ok(listed.includes(idOf(a.ID)) && listed.includes(idOf(b.ID)), `${idOf(a.ID)} and ${idOf(b.ID)} in ${listed.join(',')}`);
    await ok(t, ['lease', 'revoke', hex(a.ID)]);
    const after = (await json<{ leases?: readonly { id: Id }[] }>(t, ['lease', 'list'])).leases?.map((l) => idOf(l.id)) ?? [];
    assert.ok(!after.includes(idOf(a.ID)), 'a revoked lease is not listed');
    assert.ok(after.includes(idOf(b.ID)));
    const plain = await ok(t, ['lease', 'list']);
    assert.match(plain, /^found \d+ leases\n/);
    assert.ok(plain.split('\n').includes(hex(b.ID)), `${hex(b.ID)} in ${plain}`);
    await ok(t, ['lease', 'revoke', hex(b.ID)]);
  });

  testBoth(targets, 'lease revoke deletes its keys at once (a watcher sees the deletes); afterwards the lease is gone for every command', async (t) => {
    const p = uniquePrefix('lease-revoke');
    const grant = await json<GrantOutput>(t, ['lease', 'grant', '60']);
    const id = hex(grant.ID);
    const r1 = await put(t, `${p}a`, 'A', `--lease=${id}`);
    await put(t, `${p}b`, 'B', `--lease=${id}`);
    await put(t, `${p}stays`, 'S');
    await withBackground(t, async (bg) => {
      const w = bg.start(['watch', p, '--prefix', '--rev', String(r1 + 3), '-w', 'json']);
      assert.equal(await ok(t, ['lease', 'revoke', id]), `lease ${id} revoked\n`);
      assert.deepEqual(await keysUnder(t, p), [`${p}stays`], 'the bound keys are gone right after the revoke');
      await w.waitFor('two deletes', (out) => watchEvents(out).length >= 2);
      const events = watchEvents(w.stdout);
      assert.deepEqual(events.map((e) => [e.type, e.key]).sort(), [['DELETE', `${p}a`], ['DELETE', `${p}b`]]);
      assert.equal(events[0]!.modRevision, events[1]!.modRevision, 'one revision for the revoke');
    });
    const ttl = await json<TimeToLiveOutput>(t, ['lease', 'timetolive', id]);
    assert.equal(ttl.ttl, -1);
    assert.equal(await ok(t, ['lease', 'timetolive', id]), `lease ${id} already expired\n`);
    for (const args of [['lease', 'revoke', id], ['lease', 'keep-alive', '--once', id], ['put', `${p}c`, 'C', `--lease=${id}`]]) {
      const r = await etcdctl(t.endpoints, args);
      assert.notEqual(r.code, 0, `etcdctl ${args.join(' ')} must fail`);
      assert.ok(errorLines(r.stderr).some((l) => l.includes('etcdserver: requested lease not found')), `etcdctl ${args.join(' ')}: ${r.stderr}`);
    }
  });

  testBoth(targets, 'a lease nobody renews expires after its TTL and its keys vanish', async (t) => {
    const p = uniquePrefix('lease-expire');
    // From before the grant: the lease cannot have started earlier than this.
    const start = Date.now();
    const grant = await json<GrantOutput>(t, ['lease', 'grant', '3']);
    const id = hex(grant.ID);
    await put(t, `${p}k`, 'v', `--lease=${id}`);
    assert.deepEqual(await keysUnder(t, p), [`${p}k`]);
    await pollUntil('the key to vanish', 15_000, async () => ((await keysUnder(t, p)).length === 0 ? true : undefined), 200);
    const tookMs = Date.now() - start;
    // Not before its TTL (a quarter second allowed for the two clocks' reading), not long after.
    assert.ok(tookMs >= 2750, `gone after ${tookMs} ms, before the 3 s TTL`);
    assert.equal((await json<TimeToLiveOutput>(t, ['lease', 'timetolive', id])).ttl, -1);
  });
});

describe('lock', () => {
  testBoth(targets, 'lock NAME CMD runs CMD holding the lock (ETCD_LOCK_KEY/REV in its environment); a second lock waits until CMD ends', async (t) => {
    const p = uniquePrefix('lock');
    const name = `${p}job`;
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-etcd-lock-'));
    const release = join(dir, 'release');
    try {
      await withBackground(t, async (bg) => {
        const first = bg.start(['lock', name, '--', 'sh', '-c', `echo "holder key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"; while [ ! -e '${release}' ]; do sleep 0.05; done; echo done`]);
        await first.waitFor('the first command to run', (out) => out.includes('holder key='));
        const m = /holder key=(\S+) rev=(\d+)/.exec(first.stdout);
        assert.ok(m !== null, first.stdout);
        const [, lockKey, lockRev] = m;
        // The lock is a key NAME/<lease> created at ETCD_LOCK_REV, bound to the session's lease.
        const held = await json<RangeOutput>(t, ['get', `${name}/`, '--prefix']);
        assert.deepEqual(held.kvs?.map((k) => [b64(k.key), k.create_revision]), [[lockKey, Number(lockRev)]]);
        assert.notEqual(idOf(held.kvs?.[0]?.lease), '0', 'the lock key is bound to a lease');
        assert.ok(lockKey!.startsWith(`${name}/`));

        const second = bg.start(['lock', name, '--', 'sh', '-c', 'echo "second key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"']);
        // It queues (its own key, a later revision) and must not run while the first holds.
        await pollUntil('the second to queue', 10_000, async () => ((await keysUnder(t, `${name}/`)).length === 2 ? true : undefined), 100);
        await sleep(700);
        assert.equal(second.stdout, '', 'the second lock ran its command while the first held the lock');

        writeFileSync(release, '');
        assert.equal((await first.waitExit()).code, 0);
        assert.match(first.stdout, /done\n$/);
        await second.waitFor('the second command to run', (out) => out.includes('second key='));
        assert.equal((await second.waitExit()).code, 0);
        const m2 = /second key=(\S+) rev=(\d+)/.exec(second.stdout);
        assert.ok(m2 !== null && m2[1] !== lockKey && Number(m2[2]) > Number(lockRev), `second: ${second.stdout}`);
        // Both released: nothing left under the name.
        await pollUntil('the lock keys to be gone', 10_000, async () => ((await keysUnder(t, `${name}/`)).length === 0 ? true : undefined), 100);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  testBoth(targets, 'lock NAME without a command prints the lock key and holds it until interrupted; the next in line then gets it', async (t) => {
    const p = uniquePrefix('lock-hold');
    const name = `${p}res`;
    await withBackground(t, async (bg) => {
      const first = bg.start(['lock', name]);
      await first.waitFor('the first to hold', (out) => out.includes(`${name}/`));
      const second = bg.start(['lock', name]);
      await pollUntil('the second to queue', 10_000, async () => ((await keysUnder(t, `${name}/`)).length === 2 ? true : undefined), 100);
      await sleep(500);
      assert.equal(second.stdout, '', 'the second got the lock while the first held it');
      await first.stop('SIGINT');
      await second.waitFor('the second to hold', (out) => out.includes(`${name}/`));
      const keys = await keysUnder(t, `${name}/`);
      assert.deepEqual(keys, [second.stdout.trim()], 'only the second holder\'s key is left');
    });
  });
});

describe('elect', () => {
  testBoth(targets, 'elect NAME PROPOSAL campaigns and prints the leader key and proposal; elect -l observes it; the next in line takes over on resign', async (t) => {
    const p = uniquePrefix('elect');
    const name = `${p}el`;
    await withBackground(t, async (bg) => {
      const one = bg.start(['elect', name, 'proposal-one']);
      await one.waitFor('the first to be elected', (out) => out.includes('proposal-one'));
      const [leaderKey, proposal] = one.lines;
      assert.ok(leaderKey!.startsWith(`${name}/`), one.stdout);
      assert.equal(proposal, 'proposal-one');
      const two = bg.start(['elect', name, 'proposal-two']);
      const observer = bg.start(['elect', '-l', name]);
      await observer.waitFor('the observer to see the first leader', (out) => out.includes('proposal-one'));
      assert.deepEqual(observer.lines, [leaderKey, 'proposal-one']);
      // The campaign key is the leader key, holding the proposal, bound to a lease.
      const got = await json<RangeOutput>(t, ['get', leaderKey!]);
      assert.equal(b64(got.kvs?.[0]?.value), 'proposal-one');
      assert.notEqual(idOf(got.kvs?.[0]?.lease), '0');
      await pollUntil('the second to queue', 10_000, async () => ((await keysUnder(t, `${name}/`)).length === 2 ? true : undefined), 100);
      assert.equal(two.stdout, '', 'the second was elected while the first led');
      await one.stop('SIGINT');
      await two.waitFor('the second to be elected', (out) => out.includes('proposal-two'));
      assert.equal(two.lines[1], 'proposal-two');
      await observer.waitFor('the observer to see the second leader', (out) => out.includes('proposal-two'));
      assert.deepEqual(observer.lines, [leaderKey, 'proposal-one', two.lines[0], 'proposal-two']);
    });
  });
});
