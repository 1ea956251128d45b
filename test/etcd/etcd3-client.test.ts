// The npm `etcd3` client (1.1.2, unchanged, over @grpc/grpc-js) against a real etcd cluster and
// then a raftkv cluster with the etcd v3 API, the same expectations on both (both.ts): get, put,
// delete, prefix ranges with count, limit and sort, transactions (if/then/else, compares on
// value, version, create, mod and lease), watch().key().create() with put and delete events,
// leases with keep-alive, lock() and election().campaign()/observe().
//
// etcd3 builds its lock and election on KV, leases and watch (not on etcd's v3lock and v3election
// services), so those pass exactly when the primitives behave as etcd's do.
//
// Not compared: lease ids, member ids, absolute revisions (each cluster has its own history).
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdLockFailedError, type IKeyValue, type WatchBuilder, type Watcher } from 'etcd3';
import { pollUntil, sleep } from '../../src/harness/index.js';
import { testBoth } from './both.js';
import { Targets, uniquePrefix, type Target } from './targets.js';

const targets = new Targets();
/** Every client made, closed at the end even if a test timed out before its own close(). */
const clients = new Set<Etcd3>();
after(async () => {
  for (const c of clients) c.close();
  await targets.stopAll();
  // etcd3 1.1.2 retries a watch stream for as long as a watcher is attached, close() or not (its
  // election and lock observers watch too): after a test that failed half-way against a server
  // that refuses Watch, its timers would keep this file's process alive and hang the suite.
  // Every result is reported by now; this only ends a process that would not end by itself.
  setTimeout(() => process.exit(), 5000).unref();
});

/**
 * A connected watcher from `builder`, or a failure after `ms`: then the watcher is detached, so
 * that etcd3 stops retrying its stream.
 */
async function createWatcher(builder: WatchBuilder, ms: number): Promise<Watcher> {
  const watcher = builder.watcher();
  try {
    return await within(new Promise<Watcher>((resolve, reject) => {
      watcher.once('connected', () => resolve(watcher));
      watcher.once('error', reject);
    }), ms, 'watch().create()');
  } catch (err) {
    await within(watcher.cancel(), 5000, 'watcher.cancel()').catch(() => undefined);
    throw err;
  }
}

/** An etcd3 client on every member of `target`, closed after `check` whatever happens. */
async function withClient(target: Target, check: (client: Etcd3) => Promise<void>): Promise<void> {
  const client = new Etcd3({
    hosts: target.endpoints.map((e) => `http://${e}`),
    dialTimeout: 5000,
    // Every unary call bounded, so a server that never answers fails the test instead of hanging it.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 10_000 }),
  });
  clients.add(client);
  try {
    await check(client);
  } finally {
    client.close();
    clients.delete(client);
  }
}

/** `promise`, or a failure naming `what` after `ms`: a server that never answers a stream fails the test promptly. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const revisionOf = (r: { header?: { revision?: string | number | null } | null }): number => Number(r.header?.revision ?? 0);
const text = (kv: IKeyValue | undefined): [string, string] => [kv?.key.toString() ?? '', kv?.value.toString() ?? ''];

describe('etcd3: get, put, delete', () => {
  testBoth(targets, 'put then get returns the value; a missing key is null; put returns the previous value when asked', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-put');
      await client.put(`${p}k`).value('v1');
      assert.equal(await client.get(`${p}k`).string(), 'v1');
      assert.equal(await client.get(`${p}missing`).string(), null);
      assert.equal(await client.get(`${p}k`).exists(), true);
      const replaced = await client.put(`${p}k`).value('v2').getPrevious();
      assert.deepEqual(text(replaced), [`${p}k`, 'v1']);
      const full = await client.get(`${p}k`).exec();
      const kv = full.kvs[0]!;
      assert.equal(Number(kv.version), 2);
      assert.equal(Number(kv.mod_revision) - Number(kv.create_revision), 1);
      await client.put(`${p}n`).value(42);
      assert.equal(await client.get(`${p}n`).number(), 42);
      await client.put(`${p}j`).value(JSON.stringify({ a: [1, 2] }));
      assert.deepEqual(await client.get(`${p}j`).json(), { a: [1, 2] });
    });
  });

  testBoth(targets, 'delete().key() removes one key; delete().prefix().getPrevious() returns what it removed', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-del');
      for (const k of ['a', 'b', 'c']) await client.put(`${p}d/${k}`).value(k.toUpperCase());
      await client.put(`${p}keep`).value('K');
      const one = await client.delete().key(`${p}d/a`).exec();
      assert.equal(Number(one.deleted), 1);
      const previous = await client.delete().prefix(`${p}d/`).getPrevious();
      assert.deepEqual(previous.map(text), [[`${p}d/b`, 'B'], [`${p}d/c`, 'C']]);
      assert.deepEqual(await client.getAll().prefix(p).strings(), { [`${p}keep`]: 'K' });
      assert.equal(Number((await client.delete().key(`${p}d/a`).exec()).deleted), 0);
    });
  });
});

describe('etcd3: prefix ranges', () => {
  testBoth(targets, 'getAll().prefix(): strings, keys, count, limit and sort', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-range');
      for (const [k, v] of [['b', '1'], ['a', '3'], ['c', '2']] as const) await client.put(`${p}${k}`).value(v);
      await client.put(`${p.slice(0, -1)}0`).value('outside'); // the prefix's text without its last character, then "0"
      assert.deepEqual(await client.getAll().prefix(p).strings(), { [`${p}a`]: '3', [`${p}b`]: '1', [`${p}c`]: '2' });
      assert.deepEqual(await client.getAll().prefix(p).keys(), [`${p}a`, `${p}b`, `${p}c`]);
      // count() asks the server for the count alone (count_only).
      assert.equal(await client.getAll().prefix(p).count(), 3);
      const limited = await client.getAll().prefix(p).limit(2).exec();
      assert.deepEqual(limited.kvs.map(text), [[`${p}a`, '3'], [`${p}b`, '1']]);
      assert.equal(limited.more, true);
      assert.equal(Number(limited.count), 3);
      assert.deepEqual(await client.getAll().prefix(p).sort('Key', 'Descend').keys(), [`${p}c`, `${p}b`, `${p}a`]);
      assert.deepEqual(await client.getAll().prefix(p).sort('Value', 'Ascend').keys(), [`${p}b`, `${p}c`, `${p}a`]);
      assert.deepEqual(await client.getAll().prefix(p).sort('Create', 'Descend').keys(), [`${p}c`, `${p}a`, `${p}b`]);
    });
  });

  testBoth(targets, 'get().revision() reads the past', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-rev');
      const r1 = revisionOf(await client.put(`${p}k`).value('old'));
      const r2 = revisionOf(await client.put(`${p}k`).value('new'));
      assert.equal(r2, r1 + 1);
      assert.equal(await client.get(`${p}k`).revision(r1).string(), 'old');
      assert.equal(await client.get(`${p}k`).revision(r1 - 1).string(), null);
      assert.equal(await client.get(`${p}k`).string(), 'new');
    });
  });
});

describe('etcd3: transactions', () => {
  testBoth(targets, 'if(value ==).then(put).else(get): the branch taken follows the compare, and the other does not run', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-txn');
      await client.put(`${p}k`).value('v1');
      const yes = await client.if(`${p}k`, 'Value', '==', 'v1').then(client.put(`${p}then`).value('T')).else(client.put(`${p}else`).value('E')).commit();
      assert.equal(yes.succeeded, true);
      assert.equal(await client.get(`${p}then`).string(), 'T');
      assert.equal(await client.get(`${p}else`).string(), null);
      const no = await client.if(`${p}k`, 'Value', '==', 'nope').then(client.put(`${p}then2`).value('T')).else(client.get(`${p}k`)).commit();
      assert.equal(no.succeeded, false);
      assert.equal(no.responses.length, 1);
      assert.deepEqual(no.responses[0]!.response_range?.kvs.map(text), [[`${p}k`, 'v1']]);
      assert.equal(await client.get(`${p}then2`).string(), null);
    });
  });

  testBoth(targets, 'compares on version, create and mod revision (==, <, >, !=) and on lease, combined with and()', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-cmp');
      const rc = revisionOf(await client.put(`${p}k`).value('a'));
      const rm = revisionOf(await client.put(`${p}k`).value('b'));
      const holds = async (build: (c: Etcd3) => ReturnType<Etcd3['if']>): Promise<boolean> => (await build(client).commit()).succeeded;
      assert.equal(await holds((c) => c.if(`${p}k`, 'Version', '==', 2)), true);
      assert.equal(await holds((c) => c.if(`${p}k`, 'Create', '==', rc).and(`${p}k`, 'Mod', '==', rm)), true);
      assert.equal(await holds((c) => c.if(`${p}k`, 'Mod', '<', rm)), false);
      assert.equal(await holds((c) => c.if(`${p}k`, 'Mod', '>', rc).and(`${p}k`, 'Version', '!=', 1)), true);
      assert.equal(await holds((c) => c.if(`${p}missing`, 'Create', '==', 0)), true);
      assert.equal(await holds((c) => c.if(`${p}k`, 'Value', '>', 'a').and(`${p}k`, 'Value', '<', 'c')), true);
      const lease = client.lease(30, { autoKeepAlive: false });
      try {
        const id = await lease.grant();
        await lease.put(`${p}leased`).value('L');
        assert.equal(await holds((c) => c.if(`${p}leased`, 'Lease', '==', id)), true);
        assert.equal(await holds((c) => c.if(`${p}k`, 'Lease', '==', 0)), true, 'a key without a lease has lease 0');
        assert.equal(await holds((c) => c.if(`${p}k`, 'Lease', '==', id)), false);
      } finally {
        await lease.revoke();
      }
    });
  });

  testBoth(targets, 'a transaction\'s writes share one revision', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-txn-rev');
      const r0 = revisionOf(await client.put(`${p}start`).value('0'));
      const out = await client.if(`${p}start`, 'Value', '==', '0').then(client.put(`${p}a`).value('1'), client.put(`${p}b`).value('2'), client.delete().key(`${p}start`)).commit();
      assert.equal(revisionOf(out), r0 + 1);
      const a = (await client.get(`${p}a`).exec()).kvs[0]!;
      const b = (await client.get(`${p}b`).exec()).kvs[0]!;
      assert.deepEqual([Number(a.mod_revision), Number(b.mod_revision)], [r0 + 1, r0 + 1]);
    });
  });
});

describe('etcd3: watch', () => {
  testBoth(targets, 'watch().key().create() receives put and delete events, with previous values when asked; cancel() stops it', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-watch');
      const seen: string[] = [];
      const watcher: Watcher = await createWatcher(client.watch().key(`${p}k`).withPreviousKV(), 15_000);
      try {
        watcher.on('put', (kv, prev) => seen.push(`put ${kv.value.toString()} v${kv.version} prev=${prev?.value.toString() ?? '-'}`));
        watcher.on('delete', (kv, prev) => seen.push(`delete ${kv.key.toString()} prev=${prev?.value.toString() ?? '-'}`));
        await client.put(`${p}k`).value('1');
        await client.put(`${p}other`).value('not watched');
        await client.put(`${p}k`).value('2');
        await client.delete().key(`${p}k`);
        await pollUntil('three events', 10_000, async () => (seen.length >= 3 ? true : undefined));
        await sleep(150);
        assert.deepEqual(seen, [`put 1 v1 prev=-`, `put 2 v2 prev=1`, `delete ${p}k prev=2`]);
      } finally {
        await within(watcher.cancel(), 10_000, 'watcher.cancel()');
      }
      await client.put(`${p}k`).value('after cancel');
      await sleep(200);
      assert.equal(seen.length, 3, 'no event after cancel()');
    });
  });

  testBoth(targets, 'watch().prefix().startRevision() replays history, then follows live writes', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-watch-rev');
      const r1 = revisionOf(await client.put(`${p}a`).value('1'));
      await client.put(`${p}b`).value('2');
      const seen: string[] = [];
      const watcher = await createWatcher(client.watch().prefix(p).startRevision(String(r1)), 15_000);
      try {
        watcher.on('put', (kv) => seen.push(`${kv.key.toString().slice(p.length)}=${kv.value.toString()}@${Number(kv.mod_revision) - r1}`));
        watcher.on('delete', (kv) => seen.push(`-${kv.key.toString().slice(p.length)}@${Number(kv.mod_revision) - r1}`));
        await pollUntil('the two past events', 10_000, async () => (seen.length >= 2 ? true : undefined));
        await client.delete().key(`${p}a`);
        await pollUntil('the live event', 10_000, async () => (seen.length >= 3 ? true : undefined));
        assert.deepEqual(seen, ['a=1@0', 'b=2@1', '-a@2']);
      } finally {
        await within(watcher.cancel(), 10_000, 'watcher.cancel()');
      }
    });
  });
});

describe('etcd3: many watches on one stream', () => {
  testBoth(targets, 'two watchers of one client share its stream; each gets only its own events; cancelling one leaves the other', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-watch-two');
      const ofA: string[] = [];
      const ofB: string[] = [];
      const a = await createWatcher(client.watch().key(`${p}a`), 15_000);
      const b = await createWatcher(client.watch().prefix(`${p}b/`), 15_000);
      try {
        a.on('put', (kv) => ofA.push(`${kv.key.toString().slice(p.length)}=${kv.value.toString()}`));
        b.on('put', (kv) => ofB.push(`${kv.key.toString().slice(p.length)}=${kv.value.toString()}`));
        await client.put(`${p}a`).value('1');
        await client.put(`${p}b/x`).value('2');
        await client.put(`${p}c`).value('3');
        await pollUntil('one event each', 10_000, async () => (ofA.length >= 1 && ofB.length >= 1 ? true : undefined));
        await within(a.cancel(), 10_000, 'a.cancel()');
        await client.put(`${p}a`).value('4');
        await client.put(`${p}b/y`).value('5');
        await pollUntil('b\'s second event', 10_000, async () => (ofB.length >= 2 ? true : undefined));
        await sleep(150);
        assert.deepEqual(ofA, ['a=1']);
        assert.deepEqual(ofB, ['b/x=2', 'b/y=5']);
      } finally {
        await within(b.cancel(), 10_000, 'b.cancel()');
      }
    });
  });
});

describe('etcd3: leases', () => {
  testBoth(targets, 'a lease kept alive outlives its TTL and keeps its key; revoke() deletes the key', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-lease');
      const lease = client.lease(2);
      let renewals = 0;
      let lost: unknown = null;
      lease.on('keepaliveSucceeded', () => renewals++);
      lease.on('lost', (err) => (lost = err));
      try {
        const id = await lease.grant();
        assert.ok(id !== '' && id !== '0');
        await lease.put(`${p}k`).value('held');
        // Three TTLs, renewed automatically every TTL/3.
        await sleep(6000);
        assert.equal(lost, null, `the lease was lost: ${String(lost)}`);
        assert.ok(renewals >= 3, `${renewals} keep-alives in 6 s of a 2 s lease`);
        assert.equal(await client.get(`${p}k`).string(), 'held');
        const once = await lease.keepaliveOnce();
        assert.equal(Number(once.TTL), 2);
      } finally {
        await lease.revoke();
      }
      assert.equal(await client.get(`${p}k`).string(), null, 'revoke deletes the lease\'s keys');
    });
  });

  testBoth(targets, 'a lease released without keep-alives expires and its key vanishes', async (t) => {
    await withClient(t, async (client) => {
      const p = uniquePrefix('e3-lease-expire');
      const lease = client.lease(2, { autoKeepAlive: false });
      const start = Date.now(); // before the grant: the lease cannot have started earlier
      await lease.grant();
      await lease.put(`${p}k`).value('soon gone');
      await pollUntil('the key to vanish', 15_000, async () => ((await client.get(`${p}k`).string()) === null ? true : undefined), 100);
      const tookMs = Date.now() - start;
      assert.ok(tookMs >= 1750, `gone after ${tookMs} ms, before its 2 s TTL`);
      await assert.rejects(lease.keepaliveOnce(), /lease|not found|expired|revoked/i);
    });
  });
});

describe('etcd3: lock', () => {
  testBoth(targets, 'lock().acquire() gives the lock to one client; another fails to acquire until it is released', async (t) => {
    await withClient(t, async (one) => {
      await withClient(t, async (two) => {
        const p = uniquePrefix('e3-lock');
        const first = await one.lock(`${p}resource`).ttl(10).acquire();
        try {
          await assert.rejects(two.lock(`${p}resource`).ttl(10).acquire(), EtcdLockFailedError);
          assert.notEqual(await first.leaseId(), null);
        } finally {
          await first.release();
        }
        const second = await two.lock(`${p}resource`).ttl(10).acquire();
        await second.release();
        // do(): acquired around the function, released after it.
        const result = await one.lock(`${p}resource`).do(async () => {
          await assert.rejects(two.lock(`${p}resource`).acquire(), EtcdLockFailedError);
          return 'ran';
        });
        assert.equal(result, 'ran');
        assert.equal(await one.getAll().prefix(`${p}resource`).count(), 0, 'released: no lock key left');
      });
    });
  });
});

describe('etcd3: election', () => {
  testBoth(targets, 'campaign() elects the first candidate; observe() reports it; on resign() the next candidate is elected and observed', async (t) => {
    await withClient(t, async (client) => {
      await withClient(t, async (other) => {
        const p = uniquePrefix('e3-elect');
        const name = `${p}leader`;
        const a = client.election(name, 10).campaign('candidate-a');
        await within(a.wait(), 15_000, 'campaign a');
        const observer = await within(client.election(name, 10).observe(), 15_000, 'observe()');
        const changes: (string | undefined)[] = [];
        observer.on('change', (value) => changes.push(value));
        try {
          assert.equal(observer.leader(), 'candidate-a');
          assert.equal(await client.election(name).leader(), 'candidate-a');
          const b = other.election(name, 10).campaign('candidate-b');
          let isBElected = false;
          b.on('elected', () => (isBElected = true));
          // The client's own signal (its "internal event used to sync unit tests") that b has put
          // its key and watches a's: resigning before then was a race under load, not a check.
          await within(new Promise<void>((resolve) => b.once('_isWaiting', () => resolve())), 15_000, "campaign b's wait behind a");
          await sleep(500);
          assert.equal(isBElected, false, 'b was elected while a led');
          await a.resign();
          await within(b.wait(), 15_000, 'campaign b');
          await pollUntil('the observer to report b', 10_000, async () => (observer.leader() === 'candidate-b' ? true : undefined));
          assert.equal(changes.at(-1), 'candidate-b');
          assert.equal(await client.election(name).leader(), 'candidate-b');
          await b.resign();
        } finally {
          await within(observer.cancel(), 10_000, 'observer.cancel()');
        }
      });
    });
  });
});
