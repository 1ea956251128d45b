// etcd's v3lock and v3election gRPC services against a real etcd cluster and then a raftkv
// cluster with the etcd v3 API, the same expectations on both (both.ts). Neither etcdctl 3.4 nor
// the npm etcd3 client calls them (both build locks and elections on KV, leases and watch), but
// Go programs and etcd's gRPC gateway do; so a bare gRPC client (etcd-client.ts, on the .proto
// files in proto/etcd/) drives them here, two members at a time, so a follower's waiting is
// checked too.
//
// Compared: key layout, values, who holds and who waits, gRPC codes and messages. Not compared:
// lease ids and revisions' absolute values.
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil, sleep } from '../../src/harness/index.js';
import { b, EtcdTestClient, grpcError } from './etcd-client.js';
import { testBoth } from './both.js';
import { Targets, uniquePrefix, type Target } from './targets.js';

const targets = new Targets();
const clients = new Set<EtcdTestClient>();
after(async () => {
  for (const c of clients) c.close();
  await targets.stopAll();
});

/** One bare client on each of the first two members, closed after `check`. */
async function withClients(t: Target, check: (one: EtcdTestClient, two: EtcdTestClient) => Promise<void>): Promise<void> {
  const one = new EtcdTestClient(t.endpoints[0]!);
  const two = new EtcdTestClient(t.endpoints[1]!);
  clients.add(one).add(two);
  try {
    await check(one, two);
  } finally {
    one.close();
    two.close();
  }
}

const grant = async (c: EtcdTestClient, ttl = 30): Promise<string> => String((await c.call('Lease', 'LeaseGrant', { TTL: ttl, ID: 0 })).ID);
const hexOf = (id: string): string => BigInt(id).toString(16);
const text = (buf: Buffer | undefined): string => (buf ?? Buffer.alloc(0)).toString('utf8');

/** Whether `p` settles within `ms` (it keeps running either way). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let isSettled = false;
  void p.then(() => (isSettled = true), () => (isSettled = true));
  await sleep(ms);
  return isSettled;
}

describe('v3lock', () => {
  testBoth(targets, 'Lock answers the key NAME/<lease hex> bound to the lease; a second Lock waits until Unlock; Unlock deletes the key', async (t) => {
    await withClients(t, async (one, two) => {
      const name = `${uniquePrefix('v3lock')}res`;
      const leaseOne = await grant(one);
      const leaseTwo = await grant(two);
      const held = await one.call('Lock', 'Lock', { name: b(name), lease: leaseOne });
      assert.equal(text(held.key), `${name}/${hexOf(leaseOne)}`);
      assert.ok(Number(held.header.revision) > 0);
      const kv = (await one.call('KV', 'Range', { key: held.key })).kvs[0];
      assert.equal(String(kv?.lease), leaseOne, 'the lock key is bound to the lease');
      const waiting = two.call('Lock', 'Lock', { name: b(name), lease: leaseTwo }, 20_000);
      assert.equal(await settlesWithin(waiting, 700), false, 'the second Lock returned while the first held the lock');
      await one.call('Lock', 'Unlock', { key: held.key });
      const second = await waiting;
      assert.equal(text(second.key), `${name}/${hexOf(leaseTwo)}`);
      assert.equal((await one.call('KV', 'Range', { key: held.key })).kvs.length, 0, 'Unlock deleted the first key');
      await two.call('Lock', 'Unlock', { key: second.key });
      assert.equal(Number((await one.call('KV', 'Range', { key: b(`${name}/`), range_end: b(`${name}0`), count_only: true })).count), 0);
    });
  });

  testBoth(targets, 'revoking the holder\'s lease hands the lock to the next in line', async (t) => {
    await withClients(t, async (one, two) => {
      const name = `${uniquePrefix('v3lock-revoke')}res`;
      const leaseOne = await grant(one);
      const leaseTwo = await grant(two);
      await one.call('Lock', 'Lock', { name: b(name), lease: leaseOne });
      const waiting = two.call('Lock', 'Lock', { name: b(name), lease: leaseTwo }, 20_000);
      assert.equal(await settlesWithin(waiting, 500), false);
      await one.call('Lease', 'LeaseRevoke', { ID: leaseOne });
      assert.equal(text((await waiting).key), `${name}/${hexOf(leaseTwo)}`);
      await two.call('Lease', 'LeaseRevoke', { ID: leaseTwo });
    });
  });

  testBoth(targets, 'Lock with a lease that does not exist fails: UNKNOWN "etcdserver: requested lease not found", as etcd answers it', async (t) => {
    await withClients(t, async (one) => {
      const name = `${uniquePrefix('v3lock-nolease')}res`;
      const lease = await grant(one);
      await one.call('Lease', 'LeaseRevoke', { ID: lease });
      const err = await grpcError(one.call('Lock', 'Lock', { name: b(name), lease }, 10_000));
      assert.equal(err.details, 'etcdserver: requested lease not found');
      // etcd's lock service passes the session's error on without a code of its own: UNKNOWN,
      // not the NOT_FOUND that KV and Lease answer. Go's clientv3 maps errors by their message.
      assert.equal(err.code, 2, `code ${err.code}`);
    });
  });
});

describe('v3election', () => {
  testBoth(targets, 'Campaign with a lease that does not exist fails as Lock does: UNKNOWN "etcdserver: requested lease not found"', async (t) => {
    await withClients(t, async (one) => {
      const name = `${uniquePrefix('v3elect-nolease')}el`;
      const lease = await grant(one);
      await one.call('Lease', 'LeaseRevoke', { ID: lease });
      const err = await grpcError(one.call('Election', 'Campaign', { name: b(name), lease, value: b('x') }, 10_000));
      assert.equal(err.details, 'etcdserver: requested lease not found');
      assert.equal(err.code, 2, `code ${err.code}`);
    });
  });

  testBoth(targets, 'Campaign elects the first candidate; Leader and Observe report it; Proclaim changes the value; on Resign the next is elected', async (t) => {
    await withClients(t, async (one, two) => {
      const name = `${uniquePrefix('v3elect')}el`;
      const leaseOne = await grant(one);
      const leaseTwo = await grant(two);
      const first = await one.call('Election', 'Campaign', { name: b(name), lease: leaseOne, value: b('alpha') });
      const leader = first.leader;
      assert.equal(text(leader.name), name);
      assert.equal(text(leader.key), `${name}/${hexOf(leaseOne)}`);
      assert.equal(String(leader.lease), leaseOne);
      const kv = (await one.call('KV', 'Range', { key: leader.key })).kvs[0];
      assert.equal(String(leader.rev), String(kv?.create_revision), 'rev is the leader key\'s create revision');
      assert.equal(text((await two.call('Election', 'Leader', { name: b(name) })).kv.value), 'alpha');

      const seen: string[] = [];
      const observe = two.serverStream('Election', 'Observe', { name: b(name) });
      observe.on('data', (r: { kv: { value: Buffer } }) => {
        if (seen.at(-1) !== text(r.kv.value)) seen.push(text(r.kv.value));
      });
      observe.on('error', () => undefined); // cancelled at the end
      try {
        await pollUntil('Observe to report alpha', 10_000, async () => (seen.includes('alpha') ? true : undefined));
        const campaignTwo = two.call('Election', 'Campaign', { name: b(name), lease: leaseTwo, value: b('beta') }, 20_000);
        assert.equal(await settlesWithin(campaignTwo, 500), false, 'the second Campaign returned while the first led');
        await one.call('Election', 'Proclaim', { leader, value: b('alpha-2') });
        await pollUntil('Observe to report alpha-2', 10_000, async () => (seen.includes('alpha-2') ? true : undefined));
        assert.equal(text((await one.call('Election', 'Leader', { name: b(name) })).kv.value), 'alpha-2');
        await one.call('Election', 'Resign', { leader });
        const second = await campaignTwo;
        assert.equal(text(second.leader.key), `${name}/${hexOf(leaseTwo)}`);
        await pollUntil('Observe to report beta', 10_000, async () => (seen.includes('beta') ? true : undefined));
        assert.deepEqual(seen, ['alpha', 'alpha-2', 'beta']);
        // The old leader key may no longer proclaim.
        const stale = await grpcError(one.call('Election', 'Proclaim', { leader, value: b('late') }));
        assert.equal(stale.details, 'election: not leader');
        await two.call('Election', 'Resign', { leader: second.leader });
      } finally {
        observe.cancel();
      }
    });
  });

  testBoth(targets, 'Leader of an election nobody campaigns in fails with "election: no leader"', async (t) => {
    await withClients(t, async (one) => {
      const err = await grpcError(one.call('Election', 'Leader', { name: b(`${uniquePrefix('v3elect-none')}el`) }));
      assert.equal(err.details, 'election: no leader');
      assert.equal(err.code, 2, 'UNKNOWN, as etcd answers it');
    });
  });
});
