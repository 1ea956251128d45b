// The coordination workloads of a fault run (issue 12), recorded as they ran and checked after.
//
// lock: clients take one lock (`POST /v1/locks/fault-lock`) with a lease they keep alive, write a
//   fenced resource with the lock's token (a transaction that writes the token only if it is
//   above the one stored: what a fenced service does), hold it a little and release it. Checked:
//   - every granted token is unique (two grants at one token would be two holders at once);
//   - mutual exclusion: no grant happens, from call to answer, entirely inside a window in which
//     another client surely still held the lock: from its grant's answer until its release call,
//     while a keepalive (or the grant of its lease) called less than a TTL earlier had been
//     acknowledged, so its lease could not have ended (the leader renews before it answers);
//   - fencing: the fenced writes acknowledged as done carry tokens that only grow in real time.
// lease: clients grant a lease, attach a key, and keep it alive for a while (across faults),
//   reading the key back now and then; then they stop renewing. Checked:
//   - a key read back (linearizable) is never missing while its lease surely lives (a keepalive
//     called less than a TTL before the read's call was acknowledged): a lease kept alive within
//     its TTL never expires, across leader changes too;
//   - after the run, every lease that was left to lapse is gone and its key with it (expiry
//     really happens), once the cluster has recovered.
import { errorCode, exchange, ExchangeError, newAgent, sleep, type Agent, type Reply } from '../harness/index.js';
import type { Random } from './random.js';
import type { WorkloadContext } from './workloads.js';

const REQUEST_TIMEOUT_MS = 1000;
const EXCHANGE_TIMEOUT_MS = 1500;
/** Granted TTL of the workloads' leases (the server may raise it to its minimum; the answer says). */
const LEASE_TTL_SECONDS = 2;
const KEEPALIVE_EVERY_MS = 400;
const LOCK = 'fault-lock';
const FENCE_KEY = 'fault-fence';

/** A call and, if it came, its answer; times in ms of run time. */
interface Timed<T> {
  readonly call: number;
  readonly ret: number;
  readonly value: T;
}

type Outcome = { kind: 'ok'; reply: Reply } | { kind: 'no'; reply: Reply } | { kind: 'unknown'; error: string };

async function call(ctx: WorkloadContext, agent: Agent, url: string, method: string, path: string, body?: unknown): Promise<Outcome> {
  const headers: Record<string, string> = { 'request-timeout': String(REQUEST_TIMEOUT_MS) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const reply = await exchange(url, path, { method, headers, timeoutMs: EXCHANGE_TIMEOUT_MS, agent, security: ctx.security, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (reply.status === 401 || reply.status === 403) ctx.onAuthRefusal(`${method} ${path}: ${reply.status} ${errorCode(reply)}`);
    return reply.status === 200 ? { kind: 'ok', reply } : { kind: 'no', reply };
  } catch (err) {
    if (err instanceof ExchangeError) return { kind: 'unknown', error: err.message };
    throw err;
  }
}

function json<T>(reply: Reply): T {
  return JSON.parse(reply.body.toString('utf8')) as T;
}

/** A lease this client keeps alive in the background, with the record of what was acknowledged. */
class KeptLease {
  /** Call times of renewals (and the grant) that were acknowledged. */
  readonly acked: number[] = [];
  ttlMs = LEASE_TTL_SECONDS * 1000;
  isGone = false;
  private running = true;
  private loop: Promise<void> | null = null;

  constructor(
    readonly id: number,
    grantCall: number,
    ttlSeconds: number,
  ) {
    this.acked.push(grantCall);
    this.ttlMs = ttlSeconds * 1000;
  }

  static async grant(ctx: WorkloadContext, rng: Random, agent: Agent): Promise<KeptLease | null> {
    const target = rng.pick(ctx.endpoints());
    const t = ctx.now();
    const r = await call(ctx, agent, target.url, 'POST', '/v1/leases', { ttlSeconds: LEASE_TTL_SECONDS });
    if (r.kind !== 'ok') return null;
    const { id, ttlSeconds } = json<{ id: number; ttlSeconds: number }>(r.reply);
    return new KeptLease(id, t, ttlSeconds);
  }

  start(ctx: WorkloadContext, rng: Random, agent: Agent): void {
    this.loop = (async () => {
      while (this.running && !ctx.isStopped()) {
        await sleep(KEEPALIVE_EVERY_MS);
        if (!this.running) break;
        const target = rng.pick(ctx.endpoints());
        const t = ctx.now();
        const r = await call(ctx, agent, target.url, 'POST', `/v1/leases/${this.id}/keepalive`);
        if (r.kind === 'ok') this.acked.push(t);
        else if (r.kind === 'no' && r.reply.status === 404) {
          this.isGone = true;
          return;
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

export interface LockGrant {
  readonly client: number;
  /** The lease it was taken with: asking again with the same lease while it holds gives the same key and token (etcd's re-entry). */
  readonly lease: number;
  readonly token: number;
  readonly call: number;
  readonly ret: number;
  /** When the client asked to release it (null: it never did, e.g. the run ended). */
  releaseCall: number | null;
  /** Acknowledged renewals of the lease it held it with (call times), and that lease's TTL. */
  readonly acked: readonly number[];
  readonly ttlMs: number;
}

export interface LockWorkloadResult {
  readonly grants: LockGrant[];
  /** Fenced writes acknowledged as applied: token and call/answer times. */
  readonly fenced: Timed<number>[];
  attempts: number;
  refused: number;
  /** Why attempts were not granted, with counts (for the summary). */
  readonly refusals: Map<string, number>;
}

export async function runLockWorkload(ctx: WorkloadContext, rng: Random, clients: number): Promise<LockWorkloadResult> {
  const result: LockWorkloadResult = { grants: [], fenced: [], attempts: 0, refused: 0, refusals: new Map() };
  if (clients === 0) return result;
  // The fenced resource starts at token 0 (a value compare against a missing key is false).
  const agent = newAgent(ctx.security);
  try {
    while (!ctx.isStopped()) {
      const r = await call(ctx, agent, rng.pick(ctx.endpoints()).url, 'POST', '/v1/txn', {
        compare: [{ key: FENCE_KEY, target: 'version', op: '=', value: 0 }],
        success: [{ type: 'put', key: FENCE_KEY, value: '0'.padStart(16, '0') }],
        failure: [],
      });
      if (r.kind === 'ok') break;
      await sleep(100);
    }
  } finally {
    agent.destroy();
  }
  await Promise.all(Array.from({ length: clients }, (_, i) => lockClient(ctx, rng.fork(3000 + i), i, result)));
  return result;
}

async function lockClient(ctx: WorkloadContext, rng: Random, index: number, result: LockWorkloadResult): Promise<void> {
  const agent = newAgent(ctx.security);
  let lease: KeptLease | null = null;
  try {
    while (!ctx.isStopped()) {
      if (lease === null || lease.isGone) {
        await lease?.stop();
        lease = await KeptLease.grant(ctx, rng, agent);
        if (lease === null) {
          await sleep(rng.int(50, 200));
          continue;
        }
        lease.start(ctx, rng, agent);
      }
      const target = rng.pick(ctx.endpoints());
      const call0 = ctx.now();
      result.attempts++;
      const got = await call(ctx, agent, target.url, 'POST', `/v1/locks/${LOCK}`, { lease: lease.id });
      const ret0 = ctx.now();
      if (got.kind !== 'ok') {
        result.refused++;
        const why = got.kind === 'no' ? `${got.reply.status} ${errorCode(got.reply)}` : 'no answer';
        result.refusals.set(why, (result.refusals.get(why) ?? 0) + 1);
        if (got.kind === 'no' && got.reply.status === 404) lease.isGone = true;
        await sleep(rng.int(20, 100));
        continue;
      }
      const { key, revision: token } = json<{ key: string; revision: number }>(got.reply);
      const grant: LockGrant = { client: index, lease: lease.id, token, call: call0, ret: ret0, releaseCall: null, acked: lease.acked, ttlMs: lease.ttlMs };
      result.grants.push(grant);
      // The fenced write: the token goes in only if it is above the one stored.
      const padded = String(token).padStart(16, '0');
      const fenceCall = ctx.now();
      const fence = await call(ctx, agent, rng.pick(ctx.endpoints()).url, 'POST', '/v1/txn', {
        compare: [{ key: FENCE_KEY, target: 'value', op: '<', value: padded }],
        success: [{ type: 'put', key: FENCE_KEY, value: padded }],
        failure: [{ type: 'get', key: FENCE_KEY }],
      });
      if (fence.kind === 'ok' && json<{ succeeded: boolean }>(fence.reply).succeeded) result.fenced.push({ call: fenceCall, ret: ctx.now(), value: token });
      else if (fence.kind === 'ok') {
        // The fence refused: a newer holder wrote first (ours lapsed). Nothing more to do.
      }
      await sleep(rng.int(10, 80));
      grant.releaseCall = ctx.now();
      await call(ctx, agent, rng.pick(ctx.endpoints()).url, 'DELETE', `/v1/locks/${LOCK}/${encodeURIComponent(key)}`);
      await sleep(rng.int(0, 40));
    }
  } finally {
    await lease?.stop();
    agent.destroy();
  }
}

/** The lock workload's checks; each problem as one line. */
export function checkLocks(r: LockWorkloadResult): string[] {
  const problems: string[] = [];
  // A node answering 500 is a bug whatever the faults (a refusal has its own status).
  const internal = r.refusals.get('500 INTERNAL');
  if (internal !== undefined) problems.push(`${internal} lock requests answered 500 INTERNAL (see the node logs)`);
  const byToken = new Map<number, LockGrant>();
  for (const g of r.grants) {
    const other = byToken.get(g.token);
    // The same lease asking again (its release lost under a fault) gets its own key back: not a second holder.
    if (other !== undefined && other.lease !== g.lease) problems.push(`lock token ${g.token} granted to two leases (clients ${other.client} and ${g.client})`);
    byToken.set(g.token, g);
  }
  // Mutual exclusion: B's grant (call..ret) entirely inside a window in which A surely held it.
  for (const a of r.grants) {
    const end = a.releaseCall ?? Number.POSITIVE_INFINITY;
    for (const b of r.grants) {
      if (a === b || a.client === b.client) continue;
      if (b.call < a.ret || b.ret > end) continue;
      const heldThroughout = surelyAlive(a, b.call) && surelyAlive(a, b.ret);
      if (heldThroughout) {
        problems.push(`client ${b.client} was granted the lock (token ${b.token}, ${Math.round(b.call)}–${Math.round(b.ret)} ms) while client ${a.client} held it (token ${a.token}, since ${Math.round(a.ret)} ms, its lease renewed)`);
      }
    }
  }
  // Fencing: acknowledged fenced writes carry tokens that grow in real time.
  const fenced = [...r.fenced].sort((x, y) => x.ret - y.ret);
  for (const later of fenced) {
    for (const earlier of fenced) {
      if (earlier.ret < later.call && earlier.value >= later.value) {
        problems.push(`fenced write of token ${later.value} (called ${Math.round(later.call)} ms) succeeded after token ${earlier.value} was acknowledged (${Math.round(earlier.ret)} ms)`);
      }
    }
  }
  return problems.slice(0, 20);
}

/**
 * Whether a lease surely lived at time `t`: the last renewal called at or before `t` (the grant
 * counts as one) was acknowledged less than a TTL before it. The leader renews after the call, so
 * the lease lasts at least a TTL from it.
 */
function surelyAlive(lease: { readonly acked: readonly number[]; readonly ttlMs: number }, t: number): boolean {
  for (let i = lease.acked.length - 1; i >= 0; i--) {
    const k = lease.acked[i]!;
    if (k > t) continue;
    return t - k < lease.ttlMs;
  }
  return false;
}

export interface LeaseProbe {
  readonly client: number;
  readonly lease: number;
  readonly key: string;
  /** A linearizable read of the key: its call, and whether the key was there. */
  readonly reads: Timed<boolean>[];
  readonly acked: readonly number[];
  readonly ttlMs: number;
  /** When the client stopped renewing (null: it renewed to the end of the run). */
  stoppedAt: number | null;
}

export interface LeaseWorkloadResult {
  readonly probes: LeaseProbe[];
}

export async function runLeaseWorkload(ctx: WorkloadContext, rng: Random, clients: number, runId: string): Promise<LeaseWorkloadResult> {
  const result: LeaseWorkloadResult = { probes: [] };
  await Promise.all(Array.from({ length: clients }, (_, i) => leaseClient(ctx, rng.fork(4000 + i), i, runId, result)));
  return result;
}

async function leaseClient(ctx: WorkloadContext, rng: Random, index: number, runId: string, result: LeaseWorkloadResult): Promise<void> {
  const agent = newAgent(ctx.security);
  try {
    for (let round = 0; !ctx.isStopped(); round++) {
      const lease = await KeptLease.grant(ctx, rng, agent);
      if (lease === null) {
        await sleep(rng.int(50, 200));
        continue;
      }
      const key = `lease/${runId}/${index}/${round}`;
      const put = await call(ctx, agent, rng.pick(ctx.endpoints()).url, 'PUT', `/v1/kv/${encodeURIComponent(key)}?lease=${lease.id}`, undefined);
      if (put.kind !== 'ok') {
        await sleep(rng.int(50, 200));
        continue;
      }
      lease.start(ctx, rng, agent);
      const probe: LeaseProbe = { client: index, lease: lease.id, key, reads: [], acked: lease.acked, ttlMs: lease.ttlMs, stoppedAt: null };
      result.probes.push(probe);
      // Keep it alive for 3–8 s of the run, reading the key back every ~300 ms.
      const keepUntil = ctx.now() + rng.int(3000, 8000);
      while (ctx.now() < keepUntil && !ctx.isStopped() && !lease.isGone) {
        await sleep(rng.int(200, 400));
        const t = ctx.now();
        const r = await call(ctx, agent, rng.pick(ctx.endpoints()).url, 'GET', `/v1/kv/${encodeURIComponent(key)}?raw`);
        if (r.kind === 'unknown' || (r.kind === 'no' && r.reply.status !== 404)) continue;
        probe.reads.push({ call: t, ret: ctx.now(), value: r.kind === 'ok' });
      }
      probe.stoppedAt = ctx.now();
      await lease.stop();
    }
  } finally {
    agent.destroy();
  }
}

/** A key that was missing while its lease surely lived: one line each. */
export function checkLeases(r: LeaseWorkloadResult): string[] {
  const problems: string[] = [];
  for (const p of r.probes) {
    for (const read of p.reads) {
      if (read.value) continue;
      // Missing at some point between the read's call and answer: a violation only if the lease
      // surely lived through all of it.
      if (surelyAlive(p, read.call) && surelyAlive(p, read.ret)) {
        problems.push(`lease ${p.lease} (client ${p.client}) expired while kept alive: key ${p.key} missing at ${Math.round(read.call)}–${Math.round(read.ret)} ms, last renewal called ${Math.round(Math.max(...p.acked.filter((k) => k <= read.call)))} ms, TTL ${p.ttlMs} ms`);
      }
    }
  }
  return problems.slice(0, 20);
}

/** After recovery: every lease left to lapse is gone, with its key. Returns problems. */
export async function checkLeasesLapsed(url: string, r: LeaseWorkloadResult, security: WorkloadContext['security']): Promise<string[]> {
  const problems: string[] = [];
  const agent = newAgent(security);
  try {
    for (const p of r.probes) {
      const got = await exchange(url, `/v1/kv/${encodeURIComponent(p.key)}?raw`, { timeoutMs: 5000, agent, security, headers: { 'request-timeout': '4000' } });
      if (got.status === 200) problems.push(`lease ${p.lease} (client ${p.client}) was left to lapse but its key ${p.key} is still there`);
      else if (got.status !== 404) throw new Error(`reading ${p.key}: ${got.status} ${errorCode(got)}`);
    }
  } finally {
    agent.destroy();
  }
  return problems.slice(0, 20);
}
