// The seeded membership schedule (thesis §4): among the network and crash faults, at seeded
// moments, ask the cluster to change shape — add a new, empty server as a learner, promote a
// learner to voter (joint consensus), remove a voter (the leader too), replace one or two voters
// at once (remove and add in one joint change), transfer leadership to a random target (lagging,
// crashed or cut off as it happens), or decommission a server whose removal has committed. Right
// after a joint change is appended the schedule sometimes partitions the cluster along the seam
// between C_old and C_new, the moment joint consensus exists for (thesis §4.3).
// Requests go to the leader most of the time and to a random server otherwise; the core's
// refusals (not leader, change in progress, not yet committed in its term, a transfer under way)
// are expected and counted. The cluster keeps between MIN_VOTERS and MAX_VOTERS voters, so it can
// always make progress once the faults heal. A removed server keeps running — it must not disrupt
// the cluster (thesis §4.2.3) — until the schedule stops it for good.
import {
  ChangeInProgressError,
  InvalidConfigChangeError,
  NotLeaderError,
  ProposalDroppedError,
  members,
  type ConfigChange,
  type Configuration,
  type NodeId,
  type Raft,
} from '../raft/index.js';
import type { Rng } from './random.js';
import type { SimNode } from './sim-node.js';

export const MIN_VOTERS = 3;
export const MAX_VOTERS = 7;
const MAX_LEARNERS = 3;

export const MEMBERSHIP_OPS = ['add-learner', 'promote', 'remove', 'replace', 'transfer', 'stop'] as const;
export type MembershipOp = (typeof MEMBERSHIP_OPS)[number];
const WEIGHTS: Record<MembershipOp, number> = { 'add-learner': 3, promote: 3, remove: 2, replace: 1, transfer: 3, stop: 2 };
const TOTAL_WEIGHT = MEMBERSHIP_OPS.reduce((s, k) => s + WEIGHTS[k], 0);

export interface MembershipTarget {
  readonly nodes: readonly SimNode[];
  readonly now: number;
  leaderSlot(): number;
  /** Starts a new server with an empty disk under `id` in the spare `slot`. */
  provision(slot: number, id: NodeId): void;
  /** Shuts the server in `slot` down for good; its slot becomes a spare. */
  decommission(slot: number): void;
  /** Lets `node`'s core act on what it was just asked (take its Ready, check invariants). */
  touch(node: SimNode): void;
  /** Symmetric partition by slots (nodes not named are isolated). */
  partition(groups: readonly (readonly number[])[]): void;
  /** Schedules a seam split (splitAlongSeam) `delayMs` from now. */
  scheduleSplit(delayMs: number): void;
  /** The term of the committed entry at `index`, if known. */
  committedTermAt(index: number): number | undefined;
  trace(line: string): void;
}

export interface MembershipCounters {
  /** Changes the core accepted (a configuration entry was appended). */
  readonly proposed: number;
  /** Accepted changes whose entry committed. */
  readonly committed: number;
  /** Changes and transfers the core refused. */
  readonly refused: number;
  readonly transfersAttempted: number;
  readonly transfersSucceeded: number;
  readonly serversAdded: number;
  readonly serversStopped: number;
  /** Partitions along the C_old / C_new seam while a joint configuration was in force. */
  readonly seamSplits: number;
}

export class MembershipSchedule {
  private proposedCount = 0;
  private refusedCount = 0;
  private transfersAttempted = 0;
  private transfersSucceeded = 0;
  private serversAdded = 0;
  private serversStopped = 0;
  private seamSplits = 0;
  private nextId: number;
  /** (index, term) of every accepted change, to count the committed ones at the end. */
  private readonly accepted: { index: number; term: number }[] = [];
  private transfer: { target: NodeId; term: number; deadline: number } | null = null;

  constructor(
    private readonly rng: Rng,
    private readonly world: MembershipTarget,
    initialNodes: number,
    /** How long a transfer may take to count as successful (simulated ms). */
    private readonly transferWindowMs: number,
  ) {
    this.nextId = initialNodes + 1;
  }

  /** Mean simulated ms between two requests at rate 1; drawn once per run. */
  static drawMeanGapMs(rng: Rng): number {
    return rng.range(500, 4000);
  }

  nextDelay(meanMs: number): number {
    return this.rng.exponential(meanMs);
  }

  counters(): MembershipCounters {
    let committed = 0;
    for (const a of this.accepted) if (this.world.committedTermAt(a.index) === a.term) committed++;
    return {
      proposed: this.proposedCount,
      committed,
      refused: this.refusedCount,
      transfersAttempted: this.transfersAttempted,
      transfersSucceeded: this.transfersSucceeded,
      serversAdded: this.serversAdded,
      serversStopped: this.serversStopped,
      seamSplits: this.seamSplits,
    };
  }

  /** `node` was just seen leading term `term` for the first time. */
  leaderElected(node: SimNode, term: number): void {
    const t = this.transfer;
    if (t === null) return;
    if (this.world.now > t.deadline) {
      this.transfer = null;
      return;
    }
    if (node.id === t.target && term > t.term) {
      this.transfersSucceeded++;
      this.transfer = null;
      this.world.trace(`transfer to ${node.id} succeeded (term ${term})`);
    }
  }

  inject(): void {
    let roll = this.rng.next() * TOTAL_WEIGHT;
    let op: MembershipOp = 'stop';
    for (const k of MEMBERSHIP_OPS) {
      roll -= WEIGHTS[k];
      if (roll < 0) {
        op = k;
        break;
      }
    }
    if (op === 'stop') {
      this.stop();
      return;
    }
    const node = this.pickServer();
    if (node === null) return;
    const core = node.core!;
    if (op === 'transfer') {
      this.transferLeadership(node, core);
    } else {
      const changes = this.draw(op, node, core);
      if (changes !== null) this.propose(node, core, changes);
    }
    this.world.touch(node);
  }

  /** The leader most of the time; now and then any live server (it will refuse). */
  private pickServer(): SimNode | null {
    const leader = this.world.leaderSlot();
    if (leader >= 0 && !this.rng.chance(0.1)) return this.world.nodes[leader]!;
    const up = this.world.nodes.filter((n) => n.isUp);
    return up.length === 0 ? null : this.rng.pick(up);
  }

  /** The changes for `op` given the configuration `core` acts on, or null if none fits. */
  private draw(op: Exclude<MembershipOp, 'transfer' | 'stop'>, node: SimNode, core: Raft): ConfigChange[] | null {
    const config = core.config;
    const voters = config.voters;
    switch (op) {
      case 'add-learner': {
        if (config.learners.length >= MAX_LEARNERS) return null;
        // Now and then a removed server that still runs rejoins with its old disk: its stale log
        // and configuration must be repaired like any lagging follower's.
        const rejoining = this.outsiders(config);
        if (rejoining.length > 0 && this.rng.chance(0.3)) return [{ type: 'add-learner', id: this.rng.pick(rejoining) }];
        if (this.spareSlot() < 0) return null;
        return [{ type: 'add-learner', id: this.freshId() }];
      }
      case 'promote': {
        if (config.learners.length === 0 || voters.length >= MAX_VOTERS) return null;
        return [{ type: 'promote', id: this.rng.pick(config.learners) }];
      }
      case 'remove': {
        // Now and then a learner; else a voter, often the leader itself (thesis §4.2.2).
        if (config.learners.length > 0 && this.rng.chance(0.15)) return [{ type: 'remove', id: this.rng.pick(config.learners) }];
        if (voters.length <= MIN_VOTERS) return null;
        const id = voters.includes(node.id) && this.rng.chance(0.3) ? node.id : this.rng.pick(voters);
        return [{ type: 'remove', id }];
      }
      case 'replace': {
        // One voter, or two at once: C_old and C_new then share fewer voters, and only joint
        // consensus keeps their majorities from deciding apart.
        if (voters.length < MIN_VOTERS) return null;
        const count = this.rng.chance(0.4) ? 2 : 1;
        const leaving = voters.filter((id) => id !== node.id);
        shuffle(leaving, this.rng);
        if (voters.includes(node.id) && this.rng.chance(0.3)) leaving.unshift(node.id);
        const changes: ConfigChange[] = [];
        const learners = [...config.learners];
        let fresh = 0;
        for (let k = 0; k < count; k++) {
          changes.push({ type: 'remove', id: leaving[k]! });
          // A caught-up (or not) learner, or a brand-new empty server straight in as a voter.
          const rejoining = this.outsiders(config).filter((id) => !changes.some((c) => c.id === id));
          if (learners.length > 0 && this.rng.chance(0.5)) {
            changes.push({ type: 'promote', id: learners.splice(this.rng.int(learners.length), 1)[0]! });
          } else if (rejoining.length > 0 && this.rng.chance(0.2)) {
            changes.push({ type: 'add-voter', id: this.rng.pick(rejoining) });
          } else {
            if (this.spareSlots() <= fresh) return null;
            changes.push({ type: 'add-voter', id: `n${this.nextId + fresh++}` });
          }
        }
        return changes;
      }
      default: {
        const never: never = op;
        throw new Error(`unknown membership op ${String(never)}`);
      }
    }
  }

  private propose(node: SimNode, core: Raft, changes: ConfigChange[]): void {
    const what = changes.map((c) => `${c.type} ${c.id}`).join(' + ');
    let index: number;
    try {
      index = core.proposeConfigChange(changes);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      this.refusedCount++;
      this.world.trace(`membership ${what} at ${node.id}: refused (${(err as Error).message})`);
      return;
    }
    this.proposedCount++;
    this.accepted.push({ index, term: core.currentTerm });
    this.world.trace(`membership ${what} at ${node.id}: appended at ${index} -> ${JSON.stringify(core.config)}`);
    // A new server starts now, with an empty disk, so that the leader can reach it.
    for (const c of changes) {
      if ((c.type === 'add-learner' || c.type === 'add-voter') && c.id === `n${this.nextId}`) {
        this.world.provision(this.spareSlot(), c.id);
        this.nextId++;
        this.serversAdded++;
      }
    }
    // Half the splits come before the new entry has left the leader (its fsync takes a while),
    // so the C_old side does not even hold C_old,new.
    if (core.config.votersOutgoing.length > 0 && this.rng.chance(0.3)) this.world.scheduleSplit(this.rng.chance(0.5) ? 0 : this.rng.range(0, 20));
  }

  /**
   * Cuts the cluster along the joint configuration's seam, if the leader still has one in force:
   * the servers only in C_old with a random part of those in both, against the rest. A core that
   * let either side decide alone (elect, commit) would now split the cluster's history.
   */
  splitAlongSeam(): void {
    const leader = this.world.leaderSlot();
    if (leader < 0) return;
    const c = this.world.nodes[leader]!.core!.config;
    if (c.votersOutgoing.length === 0) return;
    const a: number[] = [];
    const b: number[] = [];
    for (const n of this.world.nodes) {
      if (!n.isProvisioned) continue;
      const inOld = c.votersOutgoing.includes(n.id);
      const inNew = c.voters.includes(n.id);
      if (inOld && !inNew) a.push(n.slot);
      else if (inNew && !inOld) b.push(n.slot);
      else (this.rng.chance(0.5) ? a : b).push(n.slot);
    }
    this.seamSplits++;
    this.world.partition([a, b]);
  }

  private transferLeadership(node: SimNode, core: Raft): void {
    const config = core.config;
    const others = [...config.voters, ...config.votersOutgoing].filter((id) => id !== node.id);
    const roll = this.rng.next();
    let target: NodeId | null;
    if (roll < 0.7 && others.length > 0) target = this.rng.pick(others);
    else if (roll < 0.8) target = null;
    else if (roll < 0.9 && config.learners.length > 0) target = this.rng.pick(config.learners);
    else target = this.rng.pick(this.world.nodes).id;
    this.transfersAttempted++;
    try {
      const to = core.transferLeadership(target);
      this.world.trace(`transfer leadership ${node.id} -> ${to}${target === null ? ' (its choice)' : ''}`);
      if (to !== node.id) this.transfer = { target: to, term: core.currentTerm, deadline: this.world.now + this.transferWindowMs };
    } catch (err) {
      if (!isRefusal(err)) throw err;
      this.refusedCount++;
      this.world.trace(`transfer leadership ${node.id} -> ${target ?? '(its choice)'}: refused (${(err as Error).message})`);
    }
  }

  /**
   * Decommissions a server that is not in the leader's committed configuration. Only once the
   * leader has committed an entry of its own term is its committed prefix in every future
   * leader's log and every stale entry beyond it dead (terms only grow along a log), so a server
   * it does not list can never again be needed by a quorum.
   */
  private stop(): void {
    const leader = this.world.leaderSlot();
    if (leader < 0) return;
    const core = this.world.nodes[leader]!.core!;
    const c = core.config;
    if (c.votersOutgoing.length > 0 || core.configIndex > core.commitIndex || core.termAt(core.commitIndex) !== core.currentTerm) return;
    const inConfig = new Set(members(c));
    const gone = this.world.nodes.filter((n) => n.isProvisioned && !inConfig.has(n.id));
    if (gone.length === 0) return;
    const victim = this.rng.pick(gone);
    this.serversStopped++;
    this.world.trace(`decommission ${victim.id} (not in ${JSON.stringify(c)}, committed at ${core.configIndex})`);
    this.world.decommission(victim.slot);
  }

  /** Servers that run (or will restart) with their disk but are not members of `config`. */
  private outsiders(config: Configuration): NodeId[] {
    const inConfig = new Set(members(config));
    return this.world.nodes.filter((n) => n.isProvisioned && !inConfig.has(n.id)).map((n) => n.id);
  }

  private spareSlots(): number {
    let n = 0;
    for (const node of this.world.nodes) if (!node.isProvisioned) n++;
    return n;
  }

  private spareSlot(): number {
    for (const n of this.world.nodes) if (!n.isProvisioned) return n.slot;
    return -1;
  }

  private freshId(): NodeId {
    return `n${this.nextId}`;
  }
}

function shuffle<T>(a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

function isRefusal(err: unknown): boolean {
  return err instanceof NotLeaderError || err instanceof ProposalDroppedError || err instanceof ChangeInProgressError || err instanceof InvalidConfigChangeError;
}
