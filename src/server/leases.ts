// Lease expiry (API.md "Coordination", etcd's lessor): the leader alone decides when a lease has
// run out, and commits that decision through the log as `{type:'leaseRevoke', expired:true}`;
// every replica applies it the same way, and wall-clock time never enters the state machine.
//
// The deadlines live only in the leader's memory. The rules that keep "a lease kept alive within
// its TTL never expires" true across leader changes (where etcd and Consul had their worst lease
// bugs) are these, each enforced in one place below:
//   1. A node decides nothing until it leads AND has committed an entry of its own term (§8: only
//      then does it know what is committed; `Leadership.hasCommittedInTerm`).
//   2. When it starts deciding, EVERY lease gets a fresh full TTL from that moment: it cannot know
//      when the old leader last renewed one, so it must assume "just now" (etcd's Promote).
//   3. A keepalive is acknowledged only after a ReadIndex round confirmed this node still leads
//      (thesis §6.4), in the same term its deadlines belong to; a deposed leader cannot ack one.
//   4. Losing leadership (or a new term) drops every deadline; deadlines never cross terms.
//   5. A lease past its deadline, or with a revoke in flight, cannot be renewed: it is as good as
//      gone, and the client learns it (404) instead of believing in a lease about to vanish.
// Expiry is proposed a bounded number of leases per tick, so a mass expiry is no proposal storm;
// a proposal that fails leaves the lease expired, and a later tick proposes it again.
//
// Cost on the leader: the deadlines sit in a heap by (deadline, id), so a tick looks only at what
// is due and a keepalive pushes one entry. The apply loop reports each lease grant and revoke
// (noteApplied), so a grant costs O(log L), not a listing of every lease; only a change it was
// not told of (a snapshot installed, a new term) makes the keeper list the store's leases again.
import type { KvResult, KvStateMachine, LeaseRevokeCommand } from '../kv/index.js';
import { DeadlineHeap } from './deadline-heap.js';
import { ApiError } from './errors.js';
import type { Logger } from './logger.js';

/** What the keeper needs to know of the node's role (RaftNode.status()). */
export interface Leadership {
  readonly isLeader: boolean;
  readonly term: number;
  /** This node, as leader, has committed an entry of its current term (§8). */
  readonly hasCommittedInTerm: boolean;
}

/** The store's leases as the keeper reads them (KvStateMachine). */
export type LeaseStore = Pick<KvStateMachine, 'leaseIds' | 'leaseTtlSeconds' | 'leaseVersion' | 'leaseCount'>;

export interface LeaseKeeperOptions {
  readonly leadership: () => Leadership;
  /**
   * Resolves once a ReadIndex round confirmed this node still leads and it has applied what it
   * had committed then; rejects otherwise (not leader, no quorum, past `deadline`).
   */
  readonly confirmLeadership: (deadline: number) => Promise<void>;
  readonly leases: LeaseStore;
  /** Proposes a revoke through the log; resolves with its applied result. */
  readonly propose: (cmd: LeaseRevokeCommand, deadline: number) => Promise<KvResult | undefined>;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default 200 */
  readonly tickMs?: number;
  /** Expiry proposals started per tick, and in flight at once. @default 16 */
  readonly maxRevokesPerTick?: number;
  /** How long an expiry proposal may take before it is given up (and retried). @default 5000 */
  readonly proposalTimeoutMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_LEASE_KEEPER_OPTIONS = { tickMs: 200, maxRevokesPerTick: 16, proposalTimeoutMs: 5000 } as const;

/**
 * The shortest TTL a grant gets, as etcd's minimum: one and a half election timeouts, in whole
 * seconds, at least 1. A shorter lease could run out while the cluster elects a new leader, before
 * its holder can reach anyone to renew it.
 */
export function minLeaseTtlSeconds(electionMs: number): number {
  return Math.max(1, Math.ceil((1.5 * electionMs) / 1000));
}

export class LeaseKeeper {
  /** The term the deadlines belong to; null while this node decides nothing (rule 1). */
  private term: number | null = null;
  /** Lease id → wall-clock ms at which it expires, on this leader's clock. */
  private readonly deadlines = new Map<number, number>();
  /** Leases whose expiry proposal is in flight. */
  private readonly revoking = new Set<number>();
  /** The store's leaseVersion the deadlines were last reconciled with. */
  private seenVersion = -1;
  /** Every deadline in `deadlines` (and stale ones, dropped as they surface), earliest first. */
  private readonly heap = new DeadlineHeap();
  /** Lease changes applied since `seenVersion`, in order: a granted id, or minus a revoked one. */
  private noted: number[] = [];
  private readonly now: () => number;
  private readonly maxPerTick: number;
  private readonly proposalTimeoutMs: number;
  /** Leases this node expired (its revoke applied), and keepalives it acknowledged. */
  readonly stats = { expired: 0, keepalives: 0 };

  constructor(private readonly options: LeaseKeeperOptions) {
    this.now = options.now ?? Date.now;
    this.maxPerTick = options.maxRevokesPerTick ?? DEFAULT_LEASE_KEEPER_OPTIONS.maxRevokesPerTick;
    this.proposalTimeoutMs = options.proposalTimeoutMs ?? DEFAULT_LEASE_KEEPER_OPTIONS.proposalTimeoutMs;
  }

  /** Runs `tick` every `tickMs` (unref'd); returns the timer to clear. */
  start(): NodeJS.Timeout {
    const timer = setInterval(() => this.tick(), this.options.tickMs ?? DEFAULT_LEASE_KEEPER_OPTIONS.tickMs);
    timer.unref();
    return timer;
  }

  /** Whether this node decides expiry now (it leads and has committed in its term). */
  get isDeciding(): boolean {
    return this.sync();
  }

  /**
   * Brings the deadlines in line with the node's leadership and the store's leases; true when
   * this node decides expiry. Cheap when nothing changed.
   */
  sync(): boolean {
    const l = this.options.leadership();
    if (!l.isLeader || !l.hasCommittedInTerm) {
      // Rule 4: a node that does not lead keeps no deadline at all.
      if (this.term !== null) this.reset(null);
      return false;
    }
    if (this.term !== l.term) {
      // Rules 2 and 4: a new leadership starts from nothing, and gives every lease a full TTL.
      this.reset(l.term);
    }
    if (this.options.leases.leaseVersion !== this.seenVersion) this.catchUp();
    return true;
  }

  /**
   * The apply loop hands over every applied result; a lease grant or revoke is noted for the next
   * sync (nothing else is done inside apply). Ignored while this node decides nothing: becoming
   * the deciding leader lists every lease anyway.
   */
  noteApplied(result: KvResult | undefined): void {
    if (this.term === null || result === undefined) return;
    if (result.type === 'leaseGrant') this.noted.push(result.id);
    else if (result.type === 'leaseRevoke') this.noted.push(-result.id);
  }

  /**
   * One round of expiry: proposes revokes for at most `maxRevokesPerTick` leases past their
   * deadline (earliest first), fewer while earlier proposals are still in flight.
   */
  tick(): void {
    if (!this.sync()) return;
    const t = this.now();
    let room = this.maxPerTick - this.revoking.size;
    const heap = this.heap;
    while (room > 0 && heap.earliest <= t) {
      const deadline = heap.earliest;
      const id = heap.earliestId!;
      heap.pop();
      // A stale entry (renewed since, or gone), or one whose revoke is in flight (pushed again
      // if that proposal fails).
      if (this.deadlines.get(id) !== deadline || this.revoking.has(id)) continue;
      this.expire(id, t);
      room--;
    }
  }

  /**
   * A keepalive (rule 3): acknowledged only once this node has confirmed it leads, in the term
   * its deadlines belong to, for a lease its applied state holds and that has not run out.
   * Throws ApiError NO_LEADER (503: retry, the client finds the leader) or LEASE_NOT_FOUND (404).
   */
  async keepAlive(id: number, deadline: number): Promise<{ id: number; ttlSeconds: number }> {
    const term = this.beginKeepAlive(id);
    await this.options.confirmLeadership(deadline);
    return this.finishKeepAlive(id, term);
  }

  /**
   * The first half of keepAlive, before leadership is confirmed: checks the lease and holds its
   * deadline; returns the term to hand to finishKeepAlive. (The simulator confirms leadership by
   * its own ReadIndex between the halves.)
   */
  beginKeepAlive(id: number): number {
    if (!this.sync()) throw notDeciding();
    const term = this.term!;
    const arrived = this.now();
    this.checkAlive(id, arrived);
    // Held while leadership is confirmed, so a tick during the round cannot expire a lease whose
    // renewal arrived in time. Only ever later: at worst a lease outlives its TTL, never the reverse.
    const held = this.deadlines.get(id);
    const ttl = this.options.leases.leaseTtlSeconds(id);
    if (held !== undefined && ttl !== null) this.extend(id, arrived + ttl * 1000);
    return term;
  }

  /** The second half of keepAlive, once leadership is confirmed: renews the lease, or throws. */
  finishKeepAlive(id: number, term: number): { id: number; ttlSeconds: number } {
    if (!this.sync() || this.term !== term) throw new ApiError('NO_LEADER', 'this node stopped leading while confirming the keepalive; retry');
    const granted = this.options.leases.leaseTtlSeconds(id);
    if (granted === null || this.revoking.has(id)) throw leaseNotFound(id);
    this.extend(id, this.now() + granted * 1000);
    this.stats.keepalives++;
    return { id, ttlSeconds: granted };
  }

  /**
   * Milliseconds left before the lease expires, on this leader's clock; null when the store holds
   * no such lease. Throws NO_LEADER while this node decides nothing.
   */
  remainingMs(id: number): number | null {
    if (!this.sync()) throw notDeciding();
    const deadline = this.deadlines.get(id);
    if (deadline === undefined) return null;
    return Math.max(0, deadline - this.now());
  }

  /** Leases this keeper holds a deadline for (tests, metrics). */
  get tracked(): number {
    return this.deadlines.size;
  }

  /** Entries in the deadline heap, stale ones included (tests: bounded by about twice `tracked`). */
  get scheduled(): number {
    return this.heap.size;
  }

  private checkAlive(id: number, t: number): void {
    const deadline = this.deadlines.get(id);
    if (this.revoking.has(id) || (deadline !== undefined && deadline <= t)) {
      throw new ApiError('LEASE_NOT_FOUND', `lease ${id} has expired (its revocation is being committed)`);
    }
  }

  private reset(term: number | null): void {
    this.deadlines.clear();
    this.heap.clear();
    this.noted = [];
    this.term = term;
    this.seenVersion = -1;
    if (term === null) return;
    const t = this.now();
    for (const id of this.options.leases.leaseIds()) {
      const ttl = this.options.leases.leaseTtlSeconds(id);
      if (ttl !== null) this.deadlines.set(id, t + ttl * 1000);
    }
    this.heap.rebuild(this.deadlines);
    this.seenVersion = this.options.leases.leaseVersion;
  }

  /**
   * Follows the store's leases from the changes noted since the last sync when they account for
   * every change (the store's leaseVersion moved by exactly as many, and as many leases are held
   * as the store has); lists them all otherwise.
   */
  private catchUp(): void {
    const store = this.options.leases;
    const noted = this.noted;
    this.noted = [];
    if (this.seenVersion >= 0 && store.leaseVersion - this.seenVersion === noted.length) {
      const t = this.now();
      for (const n of noted) {
        if (n < 0) {
          this.deadlines.delete(-n);
          continue;
        }
        // A grant counts from when this leader sees it; a replayed grant's note only ever extends.
        const ttl = store.leaseTtlSeconds(n);
        if (ttl !== null) this.extend(n, t + ttl * 1000);
      }
      if (this.deadlines.size === store.leaseCount) {
        this.seenVersion = store.leaseVersion;
        return;
      }
    }
    this.reconcile();
  }

  /** A lease granted while this node leads gets its TTL from when it is first seen; revoked ones go. */
  private reconcile(): void {
    const store = this.options.leases;
    const t = this.now();
    for (const id of store.leaseIds()) {
      if (this.deadlines.has(id)) continue;
      const ttl = store.leaseTtlSeconds(id);
      if (ttl !== null) this.setDeadline(id, t + ttl * 1000);
    }
    if (this.deadlines.size > store.leaseCount) {
      for (const id of this.deadlines.keys()) if (store.leaseTtlSeconds(id) === null) this.deadlines.delete(id);
    }
    this.seenVersion = store.leaseVersion;
  }

  /** Moves a lease's deadline later (never earlier), or gives it one. */
  private extend(id: number, deadline: number): void {
    const held = this.deadlines.get(id);
    if (held === undefined || deadline > held) this.setDeadline(id, deadline);
  }

  private setDeadline(id: number, deadline: number): void {
    this.deadlines.set(id, deadline);
    this.heap.push(deadline, id);
    // Renewals leave stale entries behind; past twice the live ones, shed them in one pass.
    if (this.heap.size > 2 * this.deadlines.size + 1024) this.heap.rebuild(this.liveDeadlines());
  }

  private *liveDeadlines(): Iterable<readonly [number, number]> {
    for (const entry of this.deadlines) if (!this.revoking.has(entry[0])) yield entry;
  }

  private expire(id: number, t: number): void {
    const term = this.term;
    this.revoking.add(id);
    this.options
      .propose({ type: 'leaseRevoke', id, expired: true, time: t }, t + this.proposalTimeoutMs)
      .then((result) => {
        if (result?.type === 'leaseRevoke') {
          this.stats.expired++;
          this.options.logger?.info('lease expired', { lease: id, deleted: result.deleted, revision: result.revision });
        }
      })
      .catch((err: unknown) => this.options.logger?.debug('lease expiry will be retried', { lease: id, error: String(err) }))
      .finally(() => {
        this.revoking.delete(id);
        // Still here (the proposal failed) and still ours: due again at the next tick.
        const deadline = this.deadlines.get(id);
        if (deadline !== undefined && this.term === term) this.heap.push(deadline, id);
      });
  }
}

function notDeciding(): ApiError {
  return new ApiError('NO_LEADER', 'this node does not lead, or has not yet committed an entry of its term; retry');
}

function leaseNotFound(id: number): ApiError {
  return new ApiError('LEASE_NOT_FOUND', `lease ${id} does not exist`);
}
