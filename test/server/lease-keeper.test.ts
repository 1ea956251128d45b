// The leader's lease keeper (src/server/leases.ts) on a fake clock and a fake node: the rules that
// keep "a lease kept alive within its TTL never expires" true across leader changes, each set up
// and checked in isolation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine, encodeCommand, type Command, type KvResult, type LeaseRevokeCommand } from '../../src/kv/index.js';
import { type UntimedCommand } from '../kv/helpers.js';
import { ApiError } from '../../src/server/errors.js';
import { LeaseKeeper, minLeaseTtlSeconds, type Leadership } from '../../src/server/leases.js';

class World {
  t = 1_000_000;
  leadership: Leadership = { isLeader: true, term: 2, hasCommittedInTerm: true };
  readonly sm = new KvStateMachine();
  private index = 0;
  readonly proposed: LeaseRevokeCommand[] = [];
  /** Expiry proposals apply at once unless held (a slow commit) or failing. */
  mode: 'apply' | 'hold' | 'fail' = 'apply';
  readonly held: (() => void)[] = [];
  confirm: () => Promise<void> = async () => undefined;
  readonly keeper: LeaseKeeper;
  /** Times the keeper listed every lease of the store (what a grant must not cost). */
  listings = 0;

  /** notes: the apply loop tells the keeper of each result, as `raftkv serve` and the simulator do. */
  constructor(maxRevokesPerTick = 16, private readonly notes = true) {
    const sm = this.sm;
    this.keeper = new LeaseKeeper({
      leadership: () => this.leadership,
      confirmLeadership: () => this.confirm(),
      leases: {
        leaseIds: () => {
          this.listings++;
          return sm.leaseIds();
        },
        leaseTtlSeconds: (id) => sm.leaseTtlSeconds(id),
        get leaseVersion() {
          return sm.leaseVersion;
        },
        get leaseCount() {
          return sm.leaseCount;
        },
      },
      now: () => this.t,
      maxRevokesPerTick,
      propose: (cmd) => {
        this.proposed.push(cmd);
        if (this.mode === 'fail') return Promise.reject(new Error('no quorum'));
        if (this.mode === 'hold') return new Promise<KvResult | undefined>((resolve) => this.held.push(() => resolve(this.apply(cmd))));
        return Promise.resolve(this.apply(cmd));
      },
    });
  }

  apply(cmd: UntimedCommand): KvResult | undefined {
    const result = this.sm.apply({ index: ++this.index, term: 1, type: 'normal', data: encodeCommand({ time: this.t, ...cmd } as Command) });
    if (this.notes) this.keeper.noteApplied(result);
    return result;
  }

  grant(id: number, ttlSeconds: number): void {
    assert.equal(this.apply({ type: 'leaseGrant', id, ttlSeconds })?.type, 'leaseGrant');
    // As the grant route does once its grant applied: the deadline counts from now.
    this.keeper.sync();
  }

  async advance(ms: number): Promise<void> {
    // Proposals settled since the last tick run their callbacks first, as they would in real time.
    await new Promise(setImmediate);
    this.t += ms;
    this.keeper.tick();
    await new Promise(setImmediate);
  }
}

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => err instanceof ApiError && err.code === code;
}

test('the minimum TTL is one and a half election timeouts in whole seconds, at least 1 (etcd)', () => {
  assert.equal(minLeaseTtlSeconds(300), 1);
  assert.equal(minLeaseTtlSeconds(1000), 2);
  assert.equal(minLeaseTtlSeconds(2000), 3);
  assert.equal(minLeaseTtlSeconds(5000), 8);
});

test('a lease granted while leading expires TTL after it was first seen, with one expired revoke proposed', async () => {
  const w = new World();
  w.grant(7, 2);
  w.apply({ type: 'put', key: 'a', value: new Uint8Array([1]), lease: 7 });
  await w.advance(1999);
  assert.equal(w.proposed.length, 0);
  assert.equal(w.keeper.remainingMs(7), 1);
  await w.advance(1);
  assert.deepEqual(w.proposed.map((c) => [c.id, c.expired]), [[7, true]]);
  assert.equal(w.sm.lease(7), null);
  assert.equal(w.sm.get('a'), null);
  assert.equal(w.keeper.stats.expired, 1);
  await w.advance(5000);
  assert.equal(w.proposed.length, 1, 'nothing more to expire');
});

test('§8: a leader that has not committed in its term decides nothing, then gives every lease a fresh full TTL', async () => {
  const w = new World();
  w.leadership = { isLeader: false, term: 1, hasCommittedInTerm: false };
  w.grant(1, 5);
  w.grant(2, 5);
  await w.advance(60_000); // a follower's clock runs on: it must not matter
  assert.equal(w.proposed.length, 0);
  assert.throws(() => w.keeper.remainingMs(1), isCode('NO_LEADER'));
  w.leadership = { isLeader: true, term: 3, hasCommittedInTerm: false };
  await w.advance(60_000);
  assert.equal(w.proposed.length, 0, 'not before an entry of its term is committed');
  await assert.rejects(w.keeper.keepAlive(1, w.t + 1000), isCode('NO_LEADER'));
  w.leadership = { isLeader: true, term: 3, hasCommittedInTerm: true };
  await w.advance(0);
  assert.equal(w.keeper.remainingMs(1), 5000, 'a fresh full TTL from the moment it starts deciding');
  await w.advance(4999);
  assert.equal(w.proposed.length, 0);
  await w.advance(1);
  assert.deepEqual(w.proposed.map((c) => c.id).sort(), [1, 2]);
});

test('a lease kept alive every TTL/3 never expires, and a keepalive renews it from when it is acknowledged', async () => {
  const w = new World();
  w.grant(9, 3);
  for (let i = 0; i < 30; i++) {
    await w.advance(1000);
    assert.deepEqual(await w.keeper.keepAlive(9, w.t + 1000), { id: 9, ttlSeconds: 3 });
  }
  assert.equal(w.proposed.length, 0);
  assert.equal(w.keeper.remainingMs(9), 3000);
  assert.equal(w.keeper.stats.keepalives, 30);
  await w.advance(3000);
  assert.deepEqual(w.proposed.map((c) => c.id), [9]);
});

test('a lost leadership drops every deadline; a new term starts over even if this node leads again', async () => {
  const w = new World();
  w.grant(1, 2);
  await w.advance(1500);
  w.leadership = { isLeader: false, term: 3, hasCommittedInTerm: false };
  await w.advance(100);
  assert.equal(w.keeper.tracked, 0);
  w.leadership = { isLeader: true, term: 4, hasCommittedInTerm: true };
  await w.advance(0);
  await w.advance(1000);
  assert.equal(w.proposed.length, 0, 'the old deadline (2000 ms after the grant) is not carried into term 4');
  assert.equal(w.keeper.remainingMs(1), 1000);
  // Deposed and re-elected between two ticks: the term alone tells.
  await w.advance(500);
  w.leadership = { isLeader: true, term: 6, hasCommittedInTerm: true };
  await w.advance(1000);
  assert.equal(w.proposed.length, 0);
  assert.equal(w.keeper.remainingMs(1), 2000);
});

test('thesis §6.4 a keepalive is acknowledged only after leadership is confirmed, in the same term; a deposed leader refuses it', async () => {
  const w = new World();
  w.grant(4, 2);
  let release!: () => void;
  w.confirm = () => new Promise<void>((resolve) => (release = resolve));
  const pending = w.keeper.keepAlive(4, w.t + 1000);
  // Deposed while the ReadIndex round is out.
  w.leadership = { isLeader: false, term: 3, hasCommittedInTerm: false };
  release();
  await assert.rejects(pending, isCode('NO_LEADER'));
  assert.equal(w.keeper.stats.keepalives, 0);
  w.leadership = { isLeader: true, term: 5, hasCommittedInTerm: true };
  w.confirm = () => Promise.reject(new ApiError('NO_QUORUM', 'no quorum'));
  await assert.rejects(w.keeper.keepAlive(4, w.t + 1000), isCode('NO_QUORUM'));
});

test('a renewal that arrived in time is not lost to a tick during its ReadIndex round', async () => {
  const w = new World();
  w.grant(4, 2);
  await w.advance(1900);
  let release!: () => void;
  w.confirm = () => new Promise<void>((resolve) => (release = resolve));
  const pending = w.keeper.keepAlive(4, w.t + 1000);
  await w.advance(300); // past the old deadline while confirming
  assert.equal(w.proposed.length, 0);
  release();
  assert.deepEqual(await pending, { id: 4, ttlSeconds: 2 });
  assert.equal(w.keeper.remainingMs(4), 2000);
});

test('a lease past its deadline or being revoked cannot be renewed; a missing one is 404', async () => {
  const w = new World();
  w.grant(4, 1);
  w.mode = 'hold';
  await w.advance(1000);
  assert.deepEqual(w.proposed.map((c) => c.id), [4]);
  await assert.rejects(w.keeper.keepAlive(4, w.t + 1000), isCode('LEASE_NOT_FOUND'));
  w.held.shift()!();
  await w.advance(0);
  assert.equal(w.sm.lease(4), null);
  await assert.rejects(w.keeper.keepAlive(4, w.t + 1000), isCode('LEASE_NOT_FOUND'));
  await assert.rejects(w.keeper.keepAlive(123456, w.t + 1000), isCode('LEASE_NOT_FOUND'));
  assert.equal(w.keeper.remainingMs(123456), null);
});

test('expiry is bounded per tick and in flight, earliest first, and a failed proposal is retried', async () => {
  const w = new World(4);
  for (let id = 1; id <= 10; id++) w.grant(id, 1);
  w.mode = 'hold';
  await w.advance(1000);
  assert.equal(w.proposed.length, 4, 'four per tick');
  await w.advance(200);
  assert.equal(w.proposed.length, 4, 'no more while four are in flight');
  for (const f of w.held.splice(0)) f();
  await w.advance(200);
  assert.equal(w.proposed.length, 8);
  w.mode = 'fail';
  for (const f of w.held.splice(0)) f();
  await w.advance(200);
  assert.equal(w.proposed.length, 10, 'the last two, whose proposals fail');
  assert.notEqual(w.sm.lease(9), null);
  w.mode = 'apply';
  await w.advance(200);
  assert.deepEqual(w.sm.leaseIds(), [], 'retried at a later tick');
  assert.deepEqual(w.proposed.slice(10).map((c) => c.id).sort(), [10, 9].sort());
});

test('a revoke applied by a client drops the deadline; a restore (snapshot) is reconciled', async () => {
  const w = new World();
  w.grant(1, 5);
  w.grant(2, 5);
  await w.advance(0);
  assert.equal(w.keeper.tracked, 2);
  w.apply({ type: 'leaseRevoke', id: 1 });
  await w.advance(0);
  assert.equal(w.keeper.tracked, 1);
  const other = new KvStateMachine();
  other.apply({ index: 1, term: 1, type: 'normal', data: encodeCommand({ type: 'leaseGrant', id: 3, ttlSeconds: 5, time: 0 }) });
  w.sm.restore(other.snapshot());
  await w.advance(0);
  assert.equal(w.keeper.tracked, 1);
  assert.equal(w.keeper.remainingMs(3), 5000);
  assert.equal(w.keeper.remainingMs(2), null);
});

test('a grant costs the leader no listing of every lease: 20,000 grants, the store\'s leases listed once (when it began deciding)', async () => {
  const w = new World();
  w.keeper.sync();
  const before = w.listings;
  for (let id = 1; id <= 20_000; id++) w.grant(id * 7919, 10 + (id % 50));
  assert.equal(w.listings - before, 0, 'each grant is followed from its applied result');
  assert.equal(w.keeper.tracked, 20_000);
  // A snapshot installed over the store is a change nobody reported: listed once, then followed again.
  const snap = w.sm.snapshot();
  w.sm.restore(snap);
  w.keeper.sync();
  assert.equal(w.listings - before, 1);
  w.grant(1, 10);
  assert.equal(w.listings - before, 1);
  assert.equal(w.keeper.tracked, 20_001);
});

/** A seeded generator (mulberry32): the scenario replays exactly. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 5,000 leases granted, renewed and revoked at random over 60 s of ticks; returns each tick's
 * expiry proposals. The model beside it says what they must be: per tick, the leases past their
 * deadline (grant or last renewal + TTL), earliest first and by id at equal deadlines, at most
 * maxRevokesPerTick of them.
 */
async function churn(notes: boolean, seed: number): Promise<{ got: number[][]; want: number[][] }> {
  const w = new World(16, notes);
  const rand = seeded(seed);
  const model = new Map<number, { deadline: number; ttl: number }>();
  const ids = Array.from({ length: 5000 }, (_, i) => 1 + i * 104_729);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  let next = 0;
  const got: number[][] = [];
  const want: number[][] = [];
  for (let step = 0; step < 600; step++) {
    for (let k = 0; k < 12 && next < ids.length; k++) {
      const id = ids[next++]!;
      const ttl = 1 + Math.floor(rand() * 20);
      w.grant(id, ttl);
      model.set(id, { deadline: w.t + ttl * 1000, ttl });
    }
    const live = [...model.keys()];
    for (let k = 0; k < 25 && live.length > 0; k++) {
      const id = live[Math.floor(rand() * live.length)]!;
      const m = model.get(id)!;
      if (m.deadline <= w.t) continue; // past its deadline: no renewal (the keeper refuses it too)
      const term = w.keeper.beginKeepAlive(id);
      w.keeper.finishKeepAlive(id, term);
      m.deadline = Math.max(m.deadline, w.t + m.ttl * 1000);
    }
    for (let k = 0; k < 2 && live.length > 0; k++) {
      const id = live[Math.floor(rand() * live.length)]!;
      if (!model.has(id) || model.get(id)!.deadline <= w.t) continue;
      assert.equal(w.apply({ type: 'leaseRevoke', id })?.type, 'leaseRevoke');
      model.delete(id);
    }
    const proposedBefore = w.proposed.length;
    await w.advance(100);
    got.push(w.proposed.slice(proposedBefore).map((c) => c.id));
    const due = [...model].filter(([, m]) => m.deadline <= w.t).sort((a, b) => a[1].deadline - b[1].deadline || a[0] - b[0]).slice(0, 16);
    for (const [id] of due) model.delete(id);
    want.push(due.map(([id]) => id));
  }
  return { got, want };
}

test('5,000 leases under churn expire in the same order as before: per tick the earliest deadlines first, by id at ties, 16 at most', async () => {
  const noted = await churn(true, 2024);
  assert.deepEqual(noted.got, noted.want);
  assert.ok(noted.want.flat().length > 1000, `the scenario expires many leases (${noted.want.flat().length})`);
  assert.ok(noted.want.some((t) => t.length === 16), 'and reaches the per-tick bound');
  // Without the apply loop's notes (every change found by listing the store): the same proposals.
  const listed = await churn(false, 2024);
  assert.deepEqual(listed.got, noted.got);
});

test('renewals leave no unbounded trail: 200,000 keepalives on a few leases, and expiry still exact', async () => {
  const w = new World();
  for (let id = 1; id <= 4; id++) w.grant(id, 5);
  for (let i = 0; i < 200_000; i++) {
    const id = 1 + (i % 3); // lease 4 is never renewed
    const term = w.keeper.beginKeepAlive(id);
    w.keeper.finishKeepAlive(id, term);
    if (i % 50_000 === 0) w.t += 1000;
    assert.ok(w.keeper.scheduled <= 2 * w.keeper.tracked + 1025, `heap entries ${w.keeper.scheduled}`);
  }
  await w.advance(2000); // 5 s after lease 4's grant
  assert.deepEqual(w.proposed.map((c) => c.id), [4]);
  await w.advance(10_000);
  assert.deepEqual(w.proposed.map((c) => c.id), [4, 1, 2, 3]);
});
