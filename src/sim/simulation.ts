// One seeded run of a simulated cluster: the discrete-event loop that drives N real cores through
// ticks, message deliveries and fsync completions, under a seeded fault schedule and client load,
// checking every invariant after every step. Single-threaded, no wall clock, no Math.random:
// the seed alone decides everything, so any run replays exactly.
import { bootstrapState, members, type Configuration, type Entry, type Message, type NodeId, type Role } from '../raft/index.js';
import { EVENT_KINDS, EventQueue, type SimEvent, type SimTimer } from './event-queue.js';
import { FaultInjector, type FaultTarget } from './faults.js';
import { HASH_SEED, foldNumber } from './hash.js';
import { InvariantSuite } from './invariants/suite.js';
import { InvariantViolation } from './invariants/violation.js';
import { LivenessProbe } from './liveness-probe.js';
import { MembershipSchedule, type MembershipTarget } from './membership.js';
import { Network } from './network.js';
import { resolveOptions, type ResolvedSimOptions, type SimOptions } from './options.js';
import { drawProfile, type RunProfile } from './profile.js';
import { Rng, STREAMS } from './random.js';
import type { SimResult, SimViolation } from './result.js';
import { SimNode, type NodeHost } from './sim-node.js';
import { Workload } from './workload.js';

const ROLE_CODES: Record<Role, number> = { follower: 0, 'pre-candidate': 1, candidate: 2, leader: 3 };
const PROBE_EVERY_MS = 20;
/** A bound on events per run, so a message storm ends as a finding rather than a hang. */
const MAX_EVENTS = 20_000_000;

export function runSeed(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

export class Simulation implements NodeHost, FaultTarget, MembershipTarget {
  now = 0;
  diskSlowFactor = 1;
  readonly invariants: InvariantSuite;
  readonly nodes: SimNode[] = [];
  readonly network: Network;
  private readonly opts: ResolvedSimOptions;
  private readonly profile: RunProfile;
  private readonly queue = new EventQueue();
  private readonly clientRng: Rng;
  private readonly diskRng: Rng;
  private readonly snapshotDiskRng: Rng;
  private readonly tickIntervalMs: number[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly workload: Workload;
  private readonly faults: FaultInjector;
  private readonly lastRole: number[];
  /** When each slot last crashed: a restart credits its core with the whole time it was down. */
  private readonly crashedAt = new Map<number, number>();
  private readonly lastTerm: number[];
  private readonly lastCommitTraced: number[];
  private readonly tracing: boolean;
  private hash = HASH_SEED;
  private events = 0;
  private done = false;
  private isBooted = false;
  /** undefined while the run goes on; null once it ended clean; else what stopped it. */
  private outcome: SimViolation | null | undefined = undefined;
  /** The final fingerprint, computed once the result is first asked for. */
  private folded: number | null = null;
  private healed = false;
  private readonly probe: LivenessProbe;
  private readonly membership: MembershipSchedule | null;
  private readonly membershipMeanGapMs: number;
  /** Founding members plus spare slots for servers added later. */
  private readonly poolSize: number;

  constructor(options: SimOptions) {
    const o = (this.opts = resolveOptions(options));
    this.tracing = o.trace !== undefined;
    this.profile = drawProfile(o.seed);
    this.clientRng = new Rng(o.seed, STREAMS.client);
    this.diskRng = new Rng(o.seed, STREAMS.disk);
    this.snapshotDiskRng = new Rng(o.seed, STREAMS.snapshotDisk);
    this.poolSize = o.nodes + o.spareNodes;
    const maxElectionMs = 2 * o.electionTicks * o.tickMs;
    // Ticks drift by up to 1%: a follower's lease (electionTicks since it heard its leader) lasts
    // at least this long in simulated time.
    const leaseMs = o.checkQuorum ? o.electionTicks * o.tickMs * 0.98 - o.tickMs : 0;
    this.invariants = new InvariantSuite(this.poolSize, maxElectionMs, leaseMs);
    this.network = new Network(this.poolSize, this.queue, new Rng(o.seed, STREAMS.network), this.profile.baseLatencyMs, this.profile.jitterMs);
    const timing = {
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      snapshotEvery: o.snapshotEvery ?? this.profile.snapshotEvery,
      snapshotKeep: o.snapshotKeep ?? this.profile.snapshotKeep,
      maxBytesPerMessage: this.profile.maxBytesPerMessage,
      maxInflightMessages: this.profile.maxInflightMessages,
    };
    for (let slot = 0; slot < this.poolSize; slot++) {
      const node = new SimNode(slot, this, timing);
      this.nodes.push(node);
      // A spare slot holds no server yet: its id is a placeholder no configuration ever names.
      if (slot < o.nodes) this.slotOf.set(node.id, slot);
      else node.id = `spare${slot + 1}`;
    }
    this.lastRole = new Array<number>(this.poolSize).fill(-1);
    this.lastTerm = new Array<number>(this.poolSize).fill(-1);
    this.lastCommitTraced = new Array<number>(this.poolSize).fill(0);
    this.workload = new Workload(this.nodes, this.clientRng, this.invariants, { maxBatch: this.profile.maxBatch }, () => this.now);
    this.probe = new LivenessProbe(this.nodes, this.workload, this.invariants.liveness, (l) => this.trace(l), () => this.finalMembers());
    this.faults = new FaultInjector(new Rng(o.seed, STREAMS.faults), o.faults, this);
    if (o.membershipRate > 0) {
      const rng = new Rng(o.seed, STREAMS.membership);
      this.membershipMeanGapMs = MembershipSchedule.drawMeanGapMs(rng) / o.membershipRate;
      this.membership = new MembershipSchedule(rng, this, o.nodes, 2 * maxElectionMs);
    } else {
      this.membershipMeanGapMs = 0;
      this.membership = null;
    }
  }

  run(): SimResult {
    if (this.begin()) {
      try {
        const queue = this.queue;
        while (!this.done) this.handleNext(queue);
        this.finish();
        this.outcome = null;
      } catch (err) {
        this.fail(err);
      }
    }
    return this.result();
  }

  // ---- stepping (the playground drives a run one event at a time; run() is the same loop) --------

  /** Boots the cluster (once); false if the run is already over (a violation at boot). */
  begin(): boolean {
    if (this.isBooted) return this.outcome === undefined;
    this.isBooted = true;
    try {
      this.boot();
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    }
  }

  /** Handles one event; false once the run is over (healed and recovered, or a violation). */
  stepEvent(): boolean {
    if (!this.begin()) return false;
    try {
      this.handleNext(this.queue);
      if (!this.done) return true;
      this.finish();
      this.outcome = null;
    } catch (err) {
      this.fail(err);
    }
    return false;
  }

  /** Events handled so far, and the running fingerprint of the run (before the final fold). */
  get eventCount(): number {
    return this.events;
  }

  get runningHash(): number {
    return this.hash;
  }

  /** The violation that stopped the run; null if it ended clean; undefined while it runs. */
  get violation(): SimViolation | null | undefined {
    return this.outcome;
  }

  /** Messages on the wire (deliveries not yet handled), earliest first. */
  inFlight(): { from: number; to: number; message: Message; arrivesAt: number }[] {
    const out: { from: number; to: number; message: Message; arrivesAt: number }[] = [];
    this.queue.forEachPending((e) => {
      if (e.kind === EVENT_KINDS.deliver && e.message !== null) out.push({ from: e.from, to: e.slot, message: e.message, arrivesAt: e.time });
    });
    return out.sort((a, b) => a.arrivesAt - b.arrivesAt);
  }

  /** Restarts a crashed server now (its scheduled restart, if any, then finds it up). */
  restartNow(slot: number): void {
    const node = this.nodes[slot]!;
    if (node.isProvisioned && !node.isUp) this.restart(node);
  }

  /** The result: the counters and the fingerprint with every node's final state folded in (once). */
  result(): SimResult {
    let traceHash = this.folded;
    if (traceHash === null) {
      traceHash = this.hash;
      for (const n of this.nodes) {
        traceHash = foldNumber(traceHash, n.core?.commitIndex ?? -1);
        traceHash = foldNumber(traceHash, n.sm?.hash ?? 0);
      }
      // Fixed once the run is over; while it goes on, the fold is of the state so far.
      if (this.outcome !== undefined) this.folded = traceHash;
    }
    const found = this.outcome ?? null;
    return {
      seed: this.opts.seed,
      nodes: this.opts.nodes,
      timeMs: this.now,
      violation: found,
      commits: this.invariants.committed.commitIndex,
      acknowledged: this.workload.acknowledged,
      keepalivesAcked: this.workload.keepalivesAcked,
      leasesExpired: this.workload.leasesExpired,
      elections: this.invariants.electionSafety.elections,
      events: this.events,
      messages: this.network.sent,
      crashes: this.faults.crashes,
      pauses: this.faults.pauses,
      snapshotsInstalled: this.nodes.reduce((s, n) => s + n.stats.snapshotsInstalled, 0),
      snapshotsTaken: this.nodes.reduce((s, n) => s + n.stats.snapshotsTaken, 0),
      idleSnapshots: this.nodes.reduce((s, n) => s + n.stats.idleSnapshots, 0),
      readiesBesideSnapshot: this.nodes.reduce((s, n) => s + n.stats.readiesBesideSnapshot, 0),
      installsWaited: this.nodes.reduce((s, n) => s + n.stats.installsWaited, 0),
      restoredBeside: this.nodes.reduce((s, n) => s + n.stats.restoredBeside, 0),
      restoredInPlace: this.nodes.reduce((s, n) => s + n.stats.restoredInPlace, 0),
      restoresSuperseded: this.nodes.reduce((s, n) => s + n.stats.restoresSuperseded, 0),
      appliedWhileSerializing: this.nodes.reduce((s, n) => s + n.stats.appliedWhileSerializing, 0),
      crashesDuringSave: this.nodes.reduce((s, n) => s + n.crashesDuringSave, 0),
      crashesBetweenSaveHalves: this.nodes.reduce((s, n) => s + n.crashesBetweenSaveHalves, 0),
      sentBeforeSync: this.nodes.reduce((s, n) => s + n.stats.sentBeforeSync, 0),
      appliedBeforeSync: this.nodes.reduce((s, n) => s + n.stats.appliedBeforeSync, 0),
      appliedEarly: this.nodes.reduce((s, n) => s + n.stats.appliedEarly, 0),
      followerCommits: this.nodes.reduce((s, n) => s + n.followerCommits, 0),
      leaderCommitsChecked: this.invariants.durableMajority.checked,
      reads: this.invariants.reads.count,
      recoveryMs: this.invariants.liveness.recoveryMs,
      ...this.membershipCounters(),
      removedServerVotesIgnored: this.invariants.voteLease?.ignoredFromOutsiders ?? 0,
      removalNotices: this.invariants.removalNotice.count,
      traceHash,
    };
  }

  private handleNext(queue: EventQueue): void {
    const e = queue.pop();
    if (e === undefined) throw new Error('the event queue ran dry');
    this.now = e.time;
    this.hash = foldNumber(this.hash, e.kind * 64 + e.slot);
    this.handle(e);
    queue.release(e);
    if (++this.events > MAX_EVENTS) throw new Error(`more than ${MAX_EVENTS} events: runaway simulation`);
  }

  private fail(err: unknown): void {
    const found: SimViolation =
      err instanceof InvariantViolation
        ? { invariant: err.invariant, details: err.details, timeMs: this.now }
        : { invariant: 'Unexpected Exception', details: err instanceof Error ? (err.stack ?? err.message) : String(err), timeMs: this.now };
    this.outcome = found;
    this.trace(`VIOLATION ${found.invariant}: ${found.details}`);
  }

  // ---- NodeHost ----------------------------------------------------------------------------------

  scheduleSync(node: SimNode): void {
    const delay = this.diskRng.range(0.1, 3) * this.diskSlowFactor;
    this.queue.schedule(this.now + delay, EVENT_KINDS.syncDone, node.slot, node.incarnation);
  }

  /**
   * A snapshot-sized write: longer than a sync (0.5–20 ms, more when the disk is slow), so that
   * Readies run beside a save and faults land in the middle of one.
   */
  scheduleSnapshotIo(node: SimNode, fire: () => void): void {
    this.scheduleTimer(node, this.snapshotDiskRng.range(0.5, 20) * this.diskSlowFactor, fire);
  }

  /**
   * Three restarts in four load the state machine beside the core, taking 1 ms to two election
   * timeouts (a decode is CPU, so a slow disk does not stretch it): elections, appends and
   * leader snapshots land during the load.
   */
  restoreDelayMs(_node: SimNode): number | null {
    if (this.snapshotDiskRng.chance(1 / 4)) return null;
    return this.snapshotDiskRng.range(1, 2 * this.opts.electionTicks * this.opts.tickMs);
  }

  stepped(node: SimNode): void {
    this.afterStep(node);
  }

  tickMsOf(node: SimNode): number {
    return this.tickIntervalMs[node.slot]!;
  }

  scheduleTimer(node: SimNode, ms: number, fire: () => void): () => void {
    const timer: SimTimer = { fire, isCancelled: false };
    // A timer of 0 ms is "the next turn of the loop" (the runtime's snapshot slices): other work
    // runs first, so it takes 0.1–2 ms here, and entries are applied between slices.
    const delay = ms === 0 ? this.snapshotDiskRng.range(0.1, 2) : ms;
    this.queue.schedule(this.now + delay, EVENT_KINDS.timer, node.slot, node.incarnation).timer = timer;
    return () => {
      timer.isCancelled = true;
    };
  }

  send(node: SimNode, m: Message): boolean {
    const to = this.slotOf.get(m.to);
    if (to === undefined) throw new InvariantViolation('Runtime Contract', `${node.id} sends ${m.type} to ${m.to}, a server that never existed`);
    return this.network.send(this.now, node.slot, to, m);
  }

  coreRandom(slot: number, incarnation: number): () => number {
    return new Rng(this.opts.seed, STREAMS.nodeBase + slot * 1000 + incarnation).asFunction();
  }

  applied(node: SimNode, entry: Entry): void {
    if (this.workload.applied(node, entry)) this.probe.acknowledged(this.now, node, entry.index);
  }

  readServed(node: SimNode, requestId: number, servedAt: number): void {
    this.workload.readServed(node, requestId, servedAt);
  }

  trace(line: string): void {
    if (this.opts.trace !== undefined) this.opts.trace(`${this.now.toFixed(3).padStart(10)} ms  ${line}`);
  }

  // ---- FaultTarget -------------------------------------------------------------------------------

  crash(slot: number, restartAfterMs: number): void {
    const node = this.nodes[slot]!;
    if (!node.isUp) return;
    node.crash();
    this.crashedAt.set(slot, this.now);
    this.lastRole[slot] = -1;
    this.trace(`CRASH ${node.id} (restart in ${restartAfterMs.toFixed(0)} ms)`);
    this.queue.schedule(this.now + restartAfterMs, EVENT_KINDS.restart, slot, node.incarnation);
  }

  pause(slot: number, electionTimeouts: number): void {
    const node = this.nodes[slot]!;
    if (!node.isUp || node.isPaused) return;
    const ms = electionTimeouts * this.opts.electionTicks * this.opts.tickMs;
    node.pausedUntil = this.now + ms;
    this.trace(`PAUSE ${node.id} for ${ms.toFixed(0)} ms`);
    // Scheduled now, so it runs before anything deferred to the same moment.
    this.queue.schedule(this.now + ms, EVENT_KINDS.resume, slot, node.incarnation);
  }

  /** What arrives for a held node waits until it resumes: the same event again, then. True if it was deferred. */
  private deferWhilePaused(node: SimNode, e: SimEvent): boolean {
    if (!node.isPaused) return false;
    const later = this.queue.schedule(node.pausedUntil, e.kind, e.slot, e.incarnation);
    later.from = e.from;
    later.message = e.message;
    later.timer = e.timer;
    return true;
  }

  leaderSlot(): number {
    let best = -1;
    let bestTerm = -1;
    for (const n of this.nodes) {
      const c = n.core;
      if (c !== null && c.role === 'leader' && c.currentTerm > bestTerm) {
        best = n.slot;
        bestTerm = c.currentTerm;
      }
    }
    return best;
  }

  // ---- MembershipTarget --------------------------------------------------------------------------

  provision(slot: number, id: NodeId): void {
    const node = this.nodes[slot]!;
    if (node.isProvisioned) throw new Error(`slot ${slot} is in use by ${node.id}`);
    this.invariants.reprovision(slot);
    // Messages still in flight to the slot's previous server carry its id and are ignored.
    node.provision(id);
    this.slotOf.set(id, slot);
    this.lastRole[slot] = -1;
    this.lastCommitTraced[slot] = 0;
    this.trace(`PROVISION ${id} (slot ${slot}, empty disk)`);
    this.queue.schedule(this.now + this.tickIntervalMs[slot]!, EVENT_KINDS.tick, slot, node.incarnation);
    this.touch(node);
  }

  decommission(slot: number): void {
    const node = this.nodes[slot]!;
    node.stop();
    this.invariants.crash(slot);
    this.lastRole[slot] = -1;
  }

  partition(groups: readonly (readonly number[])[]): void {
    this.network.partition(groups);
    this.trace(`partition along the joint seam ${this.network.describe((s) => this.nodes[s]!.id)}`);
  }

  scheduleSplit(delayMs: number): void {
    // slot 1 marks a one-off seam split; the regular membership chain runs with slot -1.
    this.queue.schedule(this.now + delayMs, EVENT_KINDS.membership, 1, 0);
  }

  committedTermAt(index: number): number | undefined {
    return this.invariants.committed.termAt(index);
  }

  touch(node: SimNode): void {
    // A held process runs nothing: what was handed to it is carried out when it resumes.
    if (node.isPaused) return;
    node.pump();
    this.afterStep(node);
  }

  // ---- the loop --------------------------------------------------------------------------------

  private boot(): void {
    const o = this.opts;
    const founders = this.nodes.slice(0, o.nodes);
    const config = { voters: founders.map((n) => n.id), votersOutgoing: [], learners: [] };
    const clock = new Rng(o.seed, STREAMS.clock);
    this.trace(`boot ${o.nodes} nodes, seed ${o.seed}, profile ${JSON.stringify(this.profile, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v))}`);
    for (const node of founders) {
      // Clocks drift apart a little and tick out of phase, as real ones do.
      this.tickIntervalMs.push(o.tickMs * (1 + clock.range(-0.01, 0.01)));
      node.bootstrap(bootstrapState(config));
      this.queue.schedule(clock.range(0, o.tickMs), EVENT_KINDS.tick, node.slot, node.incarnation);
      this.afterStep(node);
    }
    // Spare slots get their clocks from a stream of their own, so founders tick as they always did.
    const spareClock = new Rng(o.seed, STREAMS.clock + 100);
    for (let slot = o.nodes; slot < this.poolSize; slot++) this.tickIntervalMs.push(o.tickMs * (1 + spareClock.range(-0.01, 0.01)));
    if (this.membership !== null) this.queue.schedule(this.membership.nextDelay(this.membershipMeanGapMs), EVENT_KINDS.membership, -1, 0);
    this.queue.schedule(this.clientRng.range(0, this.profile.clientIntervalMs), EVENT_KINDS.client, -1, 0);
    this.queue.schedule(this.clientRng.range(0, this.profile.readIntervalMs), EVENT_KINDS.read, -1, 0);
    if (this.faults.isEnabled) this.queue.schedule(this.nextFaultDelay(), EVENT_KINDS.fault, -1, 0);
    this.queue.schedule(o.fullCheckEveryMs, EVENT_KINDS.fullCheck, -1, 0);
    this.queue.schedule(o.timeMs, EVENT_KINDS.heal, -1, 0);
  }

  private handle(e: SimEvent): void {
    switch (e.kind) {
      case EVENT_KINDS.tick: {
        const node = this.nodes[e.slot]!;
        if (node.incarnation !== e.incarnation || node.runtime === null) return;
        this.queue.schedule(this.now + this.tickIntervalMs[e.slot]!, EVENT_KINDS.tick, e.slot, e.incarnation);
        // A held process runs no timer: its ticks come due all the same, and come at its resume.
        if (node.isPaused) return;
        node.tick();
        node.pump();
        this.afterStep(node);
        return;
      }
      case EVENT_KINDS.resume: {
        const node = this.nodes[e.slot]!;
        if (node.incarnation !== e.incarnation || !node.isPaused) return;
        node.pausedUntil = 0;
        this.trace(`RESUME ${node.id}`);
        // First what the host does on waking (the ticks it missed), then a client's lease read
        // that was waiting for it, before the messages queued meanwhile: a leader held past its
        // lease must not serve it from what it held before.
        node.tick();
        this.workload.leaseReadAt(node);
        node.pump();
        this.afterStep(node);
        return;
      }
      case EVENT_KINDS.deliver: {
        const node = this.nodes[e.slot]!;
        if (node.core === null || this.network.isBlocked(e.from, e.slot)) return;
        if (this.deferWhilePaused(node, e)) return;
        const lease = this.invariants.voteLease;
        lease?.before(node.core);
        node.receive(e.message!);
        lease?.after(e.slot, node.core, e.message!, this.now);
        node.pump();
        this.afterStep(node);
        return;
      }
      case EVENT_KINDS.syncDone: {
        const node = this.nodes[e.slot]!;
        if (node.incarnation !== e.incarnation) return;
        // The disk finished; the process hears of it when it runs again.
        if (this.deferWhilePaused(node, e)) return;
        node.syncDone();
        this.afterStep(node);
        return;
      }
      case EVENT_KINDS.timer: {
        const node = this.nodes[e.slot]!;
        const timer = e.timer!;
        if (node.incarnation !== e.incarnation || timer.isCancelled) return;
        if (this.deferWhilePaused(node, e)) return;
        timer.fire();
        this.afterStep(node);
        return;
      }
      case EVENT_KINDS.restart: {
        const node = this.nodes[e.slot]!;
        if (node.incarnation === e.incarnation && !node.isUp) this.restart(node);
        return;
      }
      case EVENT_KINDS.fault:
        if (this.healed) return;
        this.faults.inject();
        this.queue.schedule(this.now + this.nextFaultDelay(), EVENT_KINDS.fault, -1, 0);
        return;
      case EVENT_KINDS.client: {
        if (this.healed) return;
        const node = this.workload.propose();
        if (node !== null) this.touch(node);
        this.queue.schedule(this.now + this.clientRng.range(0, 2 * this.profile.clientIntervalMs), EVENT_KINDS.client, -1, 0);
        return;
      }
      case EVENT_KINDS.read: {
        if (this.healed) return;
        // A third of the reader's turns are keep-alives of the leases the client keeps.
        const node = this.clientRng.chance(1 / 3) ? this.workload.keepAlive() : this.workload.read();
        if (node !== null) this.touch(node);
        this.queue.schedule(this.now + this.clientRng.range(0, 2 * this.profile.readIntervalMs), EVENT_KINDS.read, -1, 0);
        return;
      }
      case EVENT_KINDS.membership:
        if (this.healed || this.membership === null) return;
        if (e.slot === 1) {
          this.membership.splitAlongSeam();
          return;
        }
        this.membership.inject();
        this.queue.schedule(this.now + this.membership.nextDelay(this.membershipMeanGapMs), EVENT_KINDS.membership, -1, 0);
        return;
      case EVENT_KINDS.fullCheck:
        this.fullCheck();
        this.queue.schedule(this.now + this.opts.fullCheckEveryMs, EVENT_KINDS.fullCheck, -1, 0);
        return;
      case EVENT_KINDS.heal:
        this.heal();
        return;
      case EVENT_KINDS.probe:
        this.probeStep();
        return;
      case EVENT_KINDS.livenessDeadline:
        this.invariants.liveness.check(this.now, () => this.describeNodes());
        return;
      default:
        throw new Error(`unknown event kind ${e.kind}`);
    }
  }

  private restart(node: SimNode): void {
    // The most a host could ever credit (RaftOptions.downTicks): every tick since the crash, on
    // the node's own clock. Safe only if the lease rules hold: the lease-read checks say so.
    const downMs = this.now - (this.crashedAt.get(node.slot) ?? this.now);
    node.start(true, downMs / this.tickIntervalMs[node.slot]!);
    this.lastRole[node.slot] = -1;
    this.trace(`RESTART ${node.id} (term ${node.core!.currentTerm}, commit ${node.core!.commitIndex}, log ${node.core!.snapshotIndex + 1}..${node.core!.lastIndex})`);
    this.queue.schedule(this.now + this.tickIntervalMs[node.slot]!, EVENT_KINDS.tick, node.slot, node.incarnation);
    this.touch(node);
  }

  /** Invariants after a step of `node`, and the trace of what changed. */
  private afterStep(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    const slot = node.slot;
    this.invariants.step(slot, core, this.now);
    const role = ROLE_CODES[core.role];
    if (role !== this.lastRole[slot] || core.currentTerm !== this.lastTerm[slot]) {
      this.lastRole[slot] = role;
      this.lastTerm[slot] = core.currentTerm;
      this.hash = foldNumber(this.hash, (core.currentTerm * 4 + role) * 32 + slot);
      if (core.role === 'leader') {
        if (this.healed) this.invariants.liveness.leaderElected(this.now);
        this.membership?.leaderElected(node, core.currentTerm);
        this.trace(`${node.id} became LEADER of term ${core.currentTerm} (log ${core.lastIndex}, commit ${core.commitIndex})`);
      } else if (this.tracing) {
        this.trace(`${node.id} is ${core.role} in term ${core.currentTerm}`);
      }
    }
    if (this.tracing && core.role === 'leader' && core.commitIndex > this.lastCommitTraced[slot]!) {
      this.lastCommitTraced[slot] = core.commitIndex;
      this.trace(`${node.id} commit ${core.commitIndex}`);
    }
  }

  private heal(): void {
    this.healed = true;
    this.network.healAll();
    this.diskSlowFactor = 1;
    this.trace('HEAL: links up, no loss, no duplication, normal latency; restarting crashed nodes');
    for (const node of this.nodes) if (!node.isUp && node.isProvisioned) this.restart(node);
    const o = this.opts;
    const bound = o.livenessElectionTimeouts * 2 * o.electionTicks * o.tickMs;
    this.invariants.liveness.start(this.now, bound);
    if (this.leaderSlot() >= 0) this.invariants.liveness.leaderElected(this.now);
    this.queue.schedule(this.now, EVENT_KINDS.probe, -1, 0);
    this.queue.schedule(this.now + bound, EVENT_KINDS.livenessDeadline, -1, 0);
  }

  private probeStep(): void {
    const r = this.probe.step(this.now);
    if (r === true) {
      this.done = true;
      return;
    }
    if (r !== null) this.touch(r);
    this.queue.schedule(this.now + PROBE_EVERY_MS, EVENT_KINDS.probe, -1, 0);
  }

  private finish(): void {
    this.fullCheck();
    let final = this.nodes[0]!;
    for (const n of this.nodes) if ((n.core?.commitIndex ?? -1) > (final.core?.commitIndex ?? -1)) final = n;
    const core = final.core!;
    const inv = this.invariants;
    inv.durability.finish(core.commitIndex, (i) => core.entryAt(i) ?? inv.committed.entryAt(i) ?? inv.stateMachineSafety.appliedAt(i));
    this.trace(`done: ${inv.committed.commitIndex} committed, ${this.workload.acknowledged} acknowledged, ${inv.electionSafety.elections} elections`);
  }

  private fullCheck(): void {
    this.invariants.fullCheck(
      this.nodes.map((n) => n.core),
      this.now,
      (slot) => {
        const c = this.nodes[slot]!.core;
        return c === null ? null : c.snapshotMetaAt(c.snapshotIndex).config;
      },
    );
  }

  /**
   * The servers that must converge for the liveness probe: the members of the configuration in
   * force at the leader (removed servers that still run are not among them), or null while
   * there is no leader.
   */
  private finalMembers(): ReadonlySet<NodeId> | null {
    const leader = this.leaderSlot();
    if (leader < 0) return null;
    return new Set(members(this.nodes[leader]!.core!.config));
  }

  private membershipCounters(): Pick<SimResult, 'membershipProposed' | 'membershipCommitted' | 'membershipRefused' | 'transfersAttempted' | 'transfersSucceeded' | 'serversAdded' | 'serversStopped' | 'seamSplits'> {
    const c = this.membership?.counters();
    return {
      membershipProposed: c?.proposed ?? 0,
      membershipCommitted: c?.committed ?? 0,
      membershipRefused: c?.refused ?? 0,
      transfersAttempted: c?.transfersAttempted ?? 0,
      transfersSucceeded: c?.transfersSucceeded ?? 0,
      serversAdded: c?.serversAdded ?? 0,
      serversStopped: c?.serversStopped ?? 0,
      seamSplits: c?.seamSplits ?? 0,
    };
  }

  private nextFaultDelay(): number {
    return this.faults.nextDelay(this.profile.faultIntervalMs);
  }

  private describeNodes(): string {
    return this.nodes
      .map((n) => {
        const c = n.core;
        if (!n.isProvisioned) return null;
        if (c === null) return `${n.id} down`;
        return `${n.id} ${c.role} t${c.currentTerm} commit ${c.commitIndex} applied ${n.sm!.index} log ${c.snapshotIndex + 1}..${c.lastIndex} config ${describeConfig(c.config)}`;
      })
      .filter((line) => line !== null)
      .join('; ');
  }
}

function describeConfig(c: Configuration): string {
  const outgoing = c.votersOutgoing.length > 0 ? ` old {${c.votersOutgoing.join(',')}}` : '';
  const learners = c.learners.length > 0 ? ` learners {${c.learners.join(',')}}` : '';
  return `{${c.voters.join(',')}}${outgoing}${learners}`;
}
