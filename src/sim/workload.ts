// The simulated client. It proposes key-value commands (puts, deletes, conditional puts and
// transactions over a few keys, encoded as the HTTP API encodes them) at whichever node it
// believes leads (a NotLeaderError redirects it, as a real client is redirected), issues
// linearizable reads through ReadIndex (and now and then through the leader lease, thesis
// §6.4.1), and counts a proposal as acknowledged only when the node that accepted it applies
// that very index with that very payload: what a 200 from the HTTP API promises.
import { COMMAND_TAG, decodeCommand, encodeCommand, KvError, type Command } from '../kv/index.js';
import { InvariantViolation } from './invariants/violation.js';
import { NotLeaderError, ProposalDroppedError, type Entry } from '../raft/index.js';
import { bytesEqual } from './hash.js';
import type { InvariantSuite } from './invariants/suite.js';
import type { Rng } from './random.js';
import type { SimNode } from './sim-node.js';

const MAX_UNCOMMITTED = 128;
/** Few keys, so that commands meet: conditions fail and succeed, deletes find what puts wrote. */
const KEYS = 32;
const WRITER = 0;
const READER = 1;
/**
 * The leader's auto-compactor (src/server/coordination.ts) as the simulator runs it: once the
 * history holds this many revisions more than it keeps, a compaction to the last
 * HISTORY_KEPT revisions joins the batch. Without it every snapshot would carry every change.
 */
const HISTORY_KEPT = 64;
/** Lease ids the client grants, attaches and revokes: few, so that they meet. */
const LEASES = 4;
/** The leases the client keeps alive (1..KEPT); the others run out and the leader expires them. */
const KEPT_LEASES = 2;
const LEASE_TTL_SECONDS = 5;
const HISTORY_SLACK = 32;

export interface ClientProfile {
  /** Largest batch a single proposal carries. */
  maxBatch: number;
}

export class Workload {
  proposed = 0;
  acknowledged = 0;
  redirected = 0;
  readsIssued = 0;
  leaseReads = 0;
  keepalivesAcked = 0;
  leasesExpired = 0;
  /** Keep-alives whose ReadIndex is in flight, by read id: begun on `node` by its keeper in `term`. */
  private readonly keepalives = new Map<number, { node: SimNode; keeper: object; lease: number; term: number; call: number }>();
  /** Lease id → the acknowledged keep-alives of its current incarnation (call time, TTL). */
  private readonly renewed = new Map<number, { call: number; ttlMs: number }[]>();
  /** Log indexes of revokes already checked (each entry is applied on every node). */
  private readonly revokesSeen = new Set<number>();
  /**
   * Highest index acknowledged so far: every read issued later must observe it. A client's
   * write is answered by the member it asked once that member applies it, and a member that
   * forwarded the write to the leader may apply it before the leader has heard that it committed
   * (it counts the commit itself, follower.ts): so a client write counts as acknowledged from
   * its first apply on any member, not only on the leader that proposed it.
   */
  private maxAcked = 0;
  private nextPayload = 1;
  private nextRead = 1;
  /**
   * Which node the writer and the reader each believe leads. Two clients, redirected apart: a
   * stale leader that still answers reads while writes commit elsewhere is what the
   * linearizable-read check exists to catch, and one client would never see it.
   */
  private readonly guess = [0, 0];
  private readonly readMustSee = new Map<number, number>();

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly rng: Rng,
    private readonly invariants: InvariantSuite,
    private readonly profile: ClientProfile,
    /** Simulated milliseconds: the time a leader stamps on a command (log-carried time). */
    private readonly now: () => number,
  ) {}

  /** Proposes a batch at the presumed leader; returns the node touched, or null. */
  propose(): SimNode | null {
    // Likewise for writes: some clients find the new leader while others still use the old one.
    const node = (this.rng.chance(0.25) ? this.anyLeader() : null) ?? this.target(WRITER);
    if (node === null) return null;
    const core = node.core!;
    // Clients have a bounded number of requests outstanding: no piling up behind a stuck leader.
    if (core.role === 'leader' && core.lastIndex - core.commitIndex > MAX_UNCOMMITTED) return null;
    let n = 1 + this.rng.int(this.profile.maxBatch);
    const batch: Uint8Array[] = [];
    for (let i = 0; i < n; i++) batch.push(this.payload());
    const kv = node.sm?.store;
    if (core.role === 'leader' && kv !== undefined && kv.revision - kv.compactRevision > HISTORY_KEPT + HISTORY_SLACK) {
      // As the compactor does: to what this leader has applied, less what is kept. It may be
      // refused at apply (another compaction got there first): deterministically, on every node.
      batch.push(encodeCommand({ type: 'compact', revision: kv.revision - HISTORY_KEPT, time: this.now(), idempotencyKey: `c/${this.nextPayload++}` }));
      n++;
    }
    try {
      const first = n === 1 ? node.core!.propose(batch[0]!) : node.core!.proposeBatch(batch);
      for (let i = 0; i < n; i++) node.pending.set(first + i, batch[i]!);
      this.proposed += n;
    } catch (err) {
      this.redirect(err, WRITER);
    }
    return node;
  }

  /** Proposes one command; null if there is no live target or it is not the leader. */
  proposeOne(): { node: SimNode; index: number } | null {
    const node = this.target(WRITER);
    if (node === null) return null;
    const payload = this.payload();
    try {
      const index = node.core!.propose(payload);
      node.pending.set(index, payload);
      this.proposed++;
      return { node, index };
    } catch (err) {
      this.redirect(err, WRITER);
      return null;
    }
  }

  read(): SimNode | null {
    // Half the reads go to any server that believes it leads: while a deposed leader still
    // thinks it does, it gets reads as often as the new one.
    const node = (this.rng.chance(0.5) ? this.anyLeader() : null) ?? this.target(READER);
    if (node === null) return null;
    const id = this.nextRead++;
    try {
      // A third of the reads try the lease first: no round trip, if the lease holds.
      const leaseIndex = this.rng.chance(1 / 3) ? node.leaseReadIndex() : null;
      this.readMustSee.set(id, this.maxAcked);
      if (leaseIndex !== null) {
        this.leaseReads++;
        node.awaitRead(id, leaseIndex);
      } else {
        node.core!.readIndex(id);
      }
      this.readsIssued++;
    } catch (err) {
      this.readMustSee.delete(id);
      this.redirect(err, READER);
    }
    return node;
  }

  /**
   * A keep-alive as `raftkv serve` takes one (leases.ts): the node's keeper checks the lease and
   * holds its deadline, a ReadIndex round confirms leadership, then the keeper renews it
   * (readServed). Aimed at any node that believes it leads, as client keep-alives are forwarded.
   */
  keepAlive(): SimNode | null {
    const node = this.anyLeader() ?? this.target(READER);
    const keeper = node?.keeper ?? null;
    if (node === null || keeper === null || node.core === null) return node;
    const lease = 1 + this.rng.int(KEPT_LEASES);
    let term: number;
    try {
      term = keeper.beginKeepAlive(lease);
    } catch {
      return node; // not deciding, or no such lease (yet): a client would retry
    }
    const id = this.nextRead++;
    try {
      node.core.readIndex(id);
    } catch {
      return node;
    }
    this.keepalives.set(id, { node, keeper, lease, term, call: this.now() });
    return node;
  }

  /**
   * Lease Safety, checked as each revoke is first applied: a lease the leader expires must have
   * gone a whole TTL without an acknowledged keep-alive (counted from the keep-alive's call).
   */
  private checkRevoke(entry: Entry): void {
    if (entry.type !== 'normal' || entry.data[0] !== COMMAND_TAG.leaseRevoke || this.revokesSeen.has(entry.index)) return;
    this.revokesSeen.add(entry.index);
    let cmd: Command;
    try {
      cmd = decodeCommand(entry.data);
    } catch (err) {
      if (err instanceof KvError) return;
      throw err;
    }
    if (cmd.type !== 'leaseRevoke') return;
    if (cmd.expired === true) {
      this.leasesExpired++;
      for (const r of this.renewed.get(cmd.id) ?? []) {
        if (r.call + r.ttlMs > cmd.time) {
          throw new InvariantViolation('Lease Safety', `lease ${cmd.id} was expired at ${cmd.time.toFixed(3)} ms though a keep-alive called at ${r.call.toFixed(3)} ms was acknowledged (TTL ${r.ttlMs} ms)`);
        }
      }
    }
    this.renewed.delete(cmd.id);
  }

  /** `node` applied `entry`: acknowledge it if it is a proposal that node accepted. */
  applied(node: SimNode, entry: Entry): boolean {
    this.checkRevoke(entry);
    if (entry.type === 'normal' && entry.data.length > 0 && entry.index > this.maxAcked) this.maxAcked = entry.index;
    const payload = node.pending.get(entry.index);
    if (payload === undefined) return false;
    node.pending.delete(entry.index);
    if (entry.data !== payload && !bytesEqual(entry.data, payload)) return false; // replaced by another leader
    this.invariants.durability.acknowledge(entry.index, payload);
    this.acknowledged++;
    if (entry.index > this.maxAcked) this.maxAcked = entry.index;
    return true;
  }

  readServed(node: SimNode, requestId: number, servedAt: number): void {
    const keepalive = this.keepalives.get(requestId);
    if (keepalive !== undefined) {
      this.keepalives.delete(requestId);
      // The same incarnation of the node and its keeper, which must still lead in that term.
      if (node !== keepalive.node || node.keeper !== keepalive.keeper || node.keeper === null) return;
      try {
        const r = node.keeper.finishKeepAlive(keepalive.lease, keepalive.term);
        this.keepalivesAcked++;
        const list = this.renewed.get(keepalive.lease) ?? [];
        list.push({ call: keepalive.call, ttlMs: r.ttlSeconds * 1000 });
        this.renewed.set(keepalive.lease, list);
      } catch {
        // Not acknowledged (no longer leading, or the lease is gone): nothing was promised.
      }
      return;
    }
    const mustSee = this.readMustSee.get(requestId);
    if (mustSee === undefined) return;
    this.readMustSee.delete(requestId);
    this.invariants.reads.serve(node.id, requestId, servedAt, mustSee);
  }

  /**
   * A lease read whose request waited at `node` while it was held (a pause), taken first when it
   * resumes: a leader whose lease ran out meanwhile must not serve it (thesis §6.4.1). Nothing if
   * the node does not think it leads; a lapsed lease is not an error (a client would retry).
   */
  leaseReadAt(node: SimNode): void {
    if (node.core?.role !== 'leader') return;
    const leaseIndex = node.leaseReadIndex();
    if (leaseIndex === null) return;
    const id = this.nextRead++;
    this.readMustSee.set(id, this.maxAcked);
    this.leaseReads++;
    this.readsIssued++;
    node.awaitRead(id, leaseIndex);
  }

  /** A node clients can reach now: up, and not held by a pause (its requests would just wait). */
  private isReachable(n: SimNode): boolean {
    return n.core !== null && !n.isPaused;
  }

  private anyLeader(): SimNode | null {
    let count = 0;
    for (const n of this.nodes) if (n.core?.role === 'leader' && !n.isPaused) count++;
    if (count === 0) return null;
    let k = this.rng.int(count);
    for (const n of this.nodes) if (n.core?.role === 'leader' && !n.isPaused && k-- === 0) return n;
    return null;
  }

  private target(client: number): SimNode | null {
    let node = this.nodes[this.guess[client]!]!;
    if (!this.isReachable(node)) {
      this.guess[client] = this.rng.int(this.nodes.length);
      node = this.nodes[this.guess[client]!]!;
      if (!this.isReachable(node)) return null;
    }
    return node;
  }

  private redirect(err: unknown, client: number): void {
    if (err instanceof NotLeaderError) {
      this.redirected++;
      const hinted = err.leaderId === null ? -1 : this.nodes.findIndex((n) => n.id === err.leaderId);
      this.guess[client] = hinted >= 0 && hinted !== this.guess[client] ? hinted : this.rng.int(this.nodes.length);
      return;
    }
    if (err instanceof ProposalDroppedError) return;
    throw err;
  }

  private payload(): Uint8Array {
    // Every command carries its sequence number in its idempotency key, so each proposal's bytes
    // are unique and an acknowledgement recognizes them.
    const id = this.nextPayload++;
    const idempotencyKey = `c/${id}`;
    const time = this.now();
    const key = `k${this.rng.int(KEYS)}`;
    const value = new Uint8Array(8);
    new DataView(value.buffer).setFloat64(0, id);
    const kind = this.rng.next();
    let cmd: Command;
    // A few leases, granted, attached to keys and revoked (or expired) as the leader decides:
    // the store applies both the same way, deleting the lease's keys at one revision.
    const lease = 1 + this.rng.int(LEASES);
    // Only the leader's keeper expires a lease (expired: true); the client revokes.
    if (kind < 0.02) cmd = { type: 'leaseGrant', id: lease, ttlSeconds: LEASE_TTL_SECONDS, time, idempotencyKey };
    else if (kind < 0.03) cmd = { type: 'leaseRevoke', id: lease, time, idempotencyKey };
    else if (kind < 0.1) cmd = { type: 'put', key, value, lease, time, idempotencyKey };
    else if (kind < 0.55) cmd = { type: 'put', key, value, time, idempotencyKey };
    else if (kind < 0.7) cmd = { type: 'delete', key, time, idempotencyKey };
    else if (kind < 0.85) cmd = { type: 'put', key, value, prevExist: kind < 0.78, time, idempotencyKey };
    else {
      const other = `k${this.rng.int(KEYS)}`;
      cmd = {
        type: 'txn',
        compare: [{ key, target: 'version', op: '>', value: 0 }],
        success: [{ type: 'put', key, value }, { type: 'get', key: other }],
        failure: [{ type: 'delete', key: other }, { type: 'range', prefix: 'k1', limit: 4 }],
        time,
        idempotencyKey,
      };
    }
    return encodeCommand(cmd);
  }
}
