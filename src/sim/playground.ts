// The simulator as the browser playground (/ui/playground) drives it: one Simulation stepped an
// event at a time, a view of every server after each step, and the faults a person injects by
// hand. No Node imports, so it bundles for a page. Left alone, a playground run IS the seeded run
// of `npm run sim -- --seed S --nodes N --time T` (the same events, the same trace hash); a hand
// injected fault makes it another run, and `diverged` says so.
import { ChangeInProgressError, InvalidConfigChangeError, NotLeaderError, ProposalDroppedError, members, type ConfigChange, type Configuration, type Message, type Role } from '../raft/index.js';
import { FAULT_KINDS, parseFaults, type FaultKind } from './options.js';
import type { SimResult, SimViolation } from './result.js';
import type { SimNode } from './sim-node.js';
import { Simulation } from './simulation.js';

export interface PlaygroundSettings {
  readonly seed: number;
  readonly nodes: number;
  /** Simulated seconds of faults and load before everything heals (the CLI's --time). */
  readonly timeSeconds: number;
  readonly faults: readonly FaultKind[];
  /** The CLI's --membership. */
  readonly membershipRate: number;
  /** The CLI's --no-prevote / --no-check-quorum (both on by default). */
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** The CLI's --snapshot-every / --snapshot-keep; null: seeded. */
  readonly snapshotEvery?: number | null;
  readonly snapshotKeep?: number | null;
}

export const DEFAULT_PLAYGROUND: PlaygroundSettings = { seed: 1, nodes: 3, timeSeconds: 10, faults: FAULT_KINDS, membershipRate: 1, preVote: true, checkQuorum: true, snapshotEvery: null, snapshotKeep: null };

/** Settings from a query string (?seed=N&nodes=3&time=10&faults=crash,loss&membership=1); bad values fall back with a note. */
export function settingsFromQuery(query: string): { settings: PlaygroundSettings; problems: string[] } {
  const q = new URLSearchParams(query);
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = q.get(name);
    if (raw === null) return fallback;
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}; using ${fallback}`);
      return fallback;
    }
    return v;
  };
  const num = (name: string, fallback: number, min: number, max: number): number => {
    const raw = q.get(name);
    if (raw === null) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) {
      problems.push(`${name} must be a number from ${min} to ${max}; using ${fallback}`);
      return fallback;
    }
    return v;
  };
  let faults: readonly FaultKind[] = DEFAULT_PLAYGROUND.faults;
  const rawFaults = q.get('faults');
  if (rawFaults !== null) {
    try {
      faults = parseFaults(rawFaults);
    } catch (err) {
      problems.push(`faults: ${(err as Error).message}`);
    }
  }
  const flag = (name: string): boolean => {
    const raw = q.get(name);
    if (raw === null || raw === '1') return true;
    if (raw !== '0') problems.push(`${name} must be 0 or 1; using 1`);
    return raw !== '0';
  };
  const optionalInt = (name: string, min: number): number | null => (q.get(name) === null ? null : int(name, -1, min, 1_000_000) === -1 ? null : Number(q.get(name)));
  return {
    settings: {
      seed: int('seed', DEFAULT_PLAYGROUND.seed, 0, Number.MAX_SAFE_INTEGER),
      nodes: int('nodes', DEFAULT_PLAYGROUND.nodes, 1, 9),
      timeSeconds: num('time', DEFAULT_PLAYGROUND.timeSeconds, 0.1, 3600),
      faults,
      membershipRate: num('membership', DEFAULT_PLAYGROUND.membershipRate, 0, 100),
      preVote: flag('prevote'),
      checkQuorum: flag('checkQuorum'),
      snapshotEvery: optionalInt('snapshotEvery', 1),
      snapshotKeep: optionalInt('snapshotKeep', 0),
    },
    problems,
  };
}

/**
 * The settings of a pasted `npm run sim` command line (the replay line the CLI prints for a
 * failing seed), as a query string for settingsFromQuery; flags the playground does not take
 * (--seeds, --workers, --verbose) are left out with a note.
 */
export function queryFromCommand(command: string): { query: string; problems: string[] } {
  const words = command.trim().split(/\s+/);
  const q = new URLSearchParams();
  const problems: string[] = [];
  const names: Record<string, string> = { '--seed': 'seed', '--nodes': 'nodes', '--time': 'time', '--faults': 'faults', '--membership': 'membership', '--snapshot-every': 'snapshotEvery', '--snapshot-keep': 'snapshotKeep' };
  let sawSeed = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('--') || w === '--') continue;
    const name = names[w];
    if (name !== undefined) {
      const v = words[++i];
      if (v === undefined) problems.push(`${w} needs a value`);
      else q.set(name, v);
      if (w === '--seed') sawSeed = true;
    } else if (w === '--no-membership') q.set('membership', '0');
    else if (w === '--no-prevote') q.set('prevote', '0');
    else if (w === '--no-check-quorum') q.set('checkQuorum', '0');
    else if (w === '--verbose' || w === '-v') continue;
    else problems.push(`${w} is not a setting of one run; left out`);
  }
  // The CLI's defaults where the command names none (the playground's own differ).
  if (!q.has('nodes')) q.set('nodes', '5');
  if (!q.has('time')) q.set('time', '60');
  if (!sawSeed) problems.push('the command names no --seed');
  return { query: q.toString(), problems };
}

export function settingsToQuery(s: PlaygroundSettings): string {
  const q = new URLSearchParams({ seed: String(s.seed), nodes: String(s.nodes), time: String(s.timeSeconds) });
  if (s.faults.length !== FAULT_KINDS.length) q.set('faults', s.faults.length === 0 ? 'none' : s.faults.join(','));
  if (s.membershipRate !== 1) q.set('membership', String(s.membershipRate));
  if (s.preVote === false) q.set('prevote', '0');
  if (s.checkQuorum === false) q.set('checkQuorum', '0');
  if (s.snapshotEvery != null) q.set('snapshotEvery', String(s.snapshotEvery));
  if (s.snapshotKeep != null) q.set('snapshotKeep', String(s.snapshotKeep));
  return q.toString();
}

/** The `npm run sim` command line that runs the same seeded run. */
export function simCommand(s: PlaygroundSettings): string {
  const faults = s.faults.length === FAULT_KINDS.length ? '' : ` --faults ${s.faults.length === 0 ? 'none' : s.faults.join(',')}`;
  const membership = s.membershipRate === 1 ? '' : ` --membership ${s.membershipRate}`;
  const snapshots = `${s.snapshotEvery != null ? ` --snapshot-every ${s.snapshotEvery}` : ''}${s.snapshotKeep != null ? ` --snapshot-keep ${s.snapshotKeep}` : ''}`;
  const core = `${s.preVote === false ? ' --no-prevote' : ''}${s.checkQuorum === false ? ' --no-check-quorum' : ''}`;
  return `npm run sim -- --seed ${s.seed} --nodes ${s.nodes} --time ${s.timeSeconds}${faults}${membership}${snapshots}${core}`;
}

export interface ServerView {
  readonly slot: number;
  readonly id: string;
  /** 'down': crashed (its disk kept); 'spare': a slot with no server (yet, or decommissioned). */
  readonly state: 'up' | 'down' | 'spare';
  readonly role: Role | null;
  readonly term: number;
  readonly votedFor: string | null;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  /** The newest entries: [index, term] pairs, oldest first. */
  readonly log: readonly (readonly [number, number])[];
  readonly config: Configuration | null;
  readonly isolated: boolean;
  /** Held by a pause fault: it handles nothing until it resumes. */
  readonly paused: boolean;
  /** Restarted, its state machine still being loaded beside the running core (it votes and appends, applies nothing). */
  readonly loading: boolean;
}

export interface MessageView {
  readonly from: number;
  readonly to: number;
  readonly type: Message['type'];
  readonly term: number;
  /** 0 just sent … 1 about to arrive (latency-scaled). */
  readonly progress: number;
}

export interface PlaygroundView {
  readonly nowMs: number;
  readonly events: number;
  readonly runningHash: string;
  readonly servers: readonly ServerView[];
  readonly messages: readonly MessageView[];
  readonly violation: SimViolation | null;
  readonly isOver: boolean;
  readonly diverged: boolean;
  readonly lossRate: number;
}

const LOG_TAIL = 12;
/** A pause by hand holds a server this many election timeouts: long enough for the others to elect. */
const PAUSE_ELECTION_TIMEOUTS = 2;
const MAX_TRACE_LINES = 400;

export class Playground {
  readonly settings: PlaygroundSettings;
  readonly sim: Simulation;
  /** The newest lines of the run's trace (elections, faults, commits), oldest first. */
  readonly trace: string[] = [];
  /** A person injected something: this is no longer the seeded run of the CLI. */
  diverged = false;
  private readonly isolated = new Set<number>();
  private nextAddedId = 1;

  constructor(settings: PlaygroundSettings) {
    this.settings = settings;
    this.sim = new Simulation({
      seed: settings.seed,
      nodes: settings.nodes,
      timeMs: settings.timeSeconds * 1000,
      faults: settings.faults,
      membershipRate: settings.membershipRate,
      preVote: settings.preVote ?? true,
      checkQuorum: settings.checkQuorum ?? true,
      snapshotEvery: settings.snapshotEvery ?? null,
      snapshotKeep: settings.snapshotKeep ?? null,
      trace: (line) => {
        this.trace.push(line);
        if (this.trace.length > MAX_TRACE_LINES) this.trace.splice(0, this.trace.length - MAX_TRACE_LINES);
      },
    });
    this.sim.begin();
  }

  get isOver(): boolean {
    return this.sim.violation !== undefined;
  }

  /** One event of the run; false once it is over. */
  step(): boolean {
    const more = this.sim.stepEvent();
    return more;
  }

  /** Steps until `untilMs` of simulated time, at most `maxEvents` events; false once over. */
  advanceTo(untilMs: number, maxEvents: number): boolean {
    for (let i = 0; i < maxEvents; i++) {
      if (this.sim.now >= untilMs) return true;
      if (!this.step()) return false;
    }
    return !this.isOver;
  }

  /** Runs to the end (bounded): the CLI's run of the same seed ends in the same state. */
  runToEnd(maxEvents = 50_000_000): SimResult {
    for (let i = 0; i < maxEvents && this.sim.stepEvent(); i++);
    return this.sim.result();
  }

  result(): SimResult {
    return this.sim.result();
  }

  // ---- faults by hand ----------------------------------------------------------------------------

  crash(slot: number): void {
    const node = this.sim.nodes[slot];
    if (node === undefined || !node.isUp) return;
    this.handled(`crash ${node.id}`);
    // Restarted by hand, or when the run heals.
    this.sim.crash(slot, 1e12);
  }

  restart(slot: number): void {
    const node = this.sim.nodes[slot];
    if (node === undefined || node.isUp || !node.isProvisioned) return;
    this.handled(`restart ${node.id}`);
    this.sim.restartNow(slot);
  }

  /**
   * Holds `slot` for two election timeouts (a stop-the-world GC, a SIGSTOP): it handles nothing
   * meanwhile, the others elect a new leader if it led, and at its resume the ticks that came due
   * are given first, so a held leader finds its lease over before it answers anything.
   */
  pause(slot: number): void {
    const node = this.sim.nodes[slot];
    if (node === undefined || !node.isUp || node.isPaused) return;
    this.handled(`pause ${node.id}`);
    this.sim.pause(slot, PAUSE_ELECTION_TIMEOUTS);
  }

  /** Cuts `slot` off from every other server (both ways); the others still talk. */
  isolate(slot: number): void {
    this.isolated.add(slot);
    this.handled(`isolate ${this.sim.nodes[slot]?.id ?? slot}`);
    this.applyPartition();
  }

  heal(): void {
    this.isolated.clear();
    this.handled('heal every link');
    this.sim.network.healLinks();
  }

  setLoss(rate: number): void {
    this.handled(`message loss ${(rate * 100).toFixed(0)}%`);
    this.sim.network.lossRate = Math.min(1, Math.max(0, rate));
  }

  /** Asks the leader to add a new, empty server as a voter (it joins through joint consensus). */
  addServer(): string {
    const leader = this.leaderNode();
    if (leader === null) return 'no leader to ask';
    const slot = this.sim.nodes.findIndex((n) => !n.isProvisioned);
    if (slot < 0) return 'no spare slot (at most four servers beyond the founders)';
    let id = `u${this.nextAddedId}`;
    while (this.sim.nodes.some((n) => n.id === id)) id = `u${++this.nextAddedId}`;
    this.nextAddedId++;
    return this.configChange(leader.slot, [{ type: 'add-voter', id }], () => this.sim.provision(slot, id));
  }

  removeServer(id: string): string {
    const leader = this.leaderNode();
    if (leader === null) return 'no leader to ask';
    return this.configChange(leader.slot, [{ type: 'remove', id }], () => undefined);
  }

  transferLeadership(to: string | null): string {
    const leader = this.leaderNode();
    if (leader === null) return 'no leader to ask';
    this.handled(`transfer leadership ${leader.id} -> ${to ?? '(its choice)'}`);
    try {
      const target = leader.core!.transferLeadership(to);
      this.sim.touch(leader);
      return `transferring to ${target}`;
    } catch (err) {
      if (isRefusal(err)) return `refused: ${(err as Error).message}`;
      throw err;
    }
  }

  // ---- the view ----------------------------------------------------------------------------------

  view(): PlaygroundView {
    const sim = this.sim;
    const servers: ServerView[] = sim.nodes.map((n) => {
      const core = n.core;
      const state = !n.isProvisioned ? 'spare' : n.isUp && core !== null ? 'up' : 'down';
      if (core === null) {
        return { slot: n.slot, id: n.id, state, role: null, term: n.durable.currentTerm, votedFor: n.durable.votedFor, leader: null, commitIndex: n.durable.commitIndex, appliedIndex: n.sm?.index ?? 0, lastIndex: 0, snapshotIndex: 0, log: [], config: null, isolated: this.isolated.has(n.slot), paused: false, loading: false };
      }
      const log: [number, number][] = [];
      for (let i = Math.max(core.snapshotIndex + 1, core.lastIndex - LOG_TAIL + 1); i <= core.lastIndex; i++) log.push([i, core.termAt(i) ?? 0]);
      return {
        slot: n.slot,
        id: n.id,
        state,
        role: core.role,
        term: core.currentTerm,
        votedFor: core.votedFor,
        leader: core.leaderId,
        commitIndex: core.commitIndex,
        appliedIndex: n.sm?.index ?? 0,
        lastIndex: core.lastIndex,
        snapshotIndex: core.snapshotIndex,
        log,
        config: core.config,
        isolated: this.isolated.has(n.slot),
        paused: n.isPaused,
        loading: n.runtime?.isStateRestoring ?? false,
      };
    });
    const now = sim.now;
    // Latencies are a few ms (more in a spike): draw each message along the last 10 ms of its trip.
    const messages = sim.inFlight().map((m) => ({ from: m.from, to: m.to, type: m.message.type, term: m.message.term, progress: Math.max(0, Math.min(1, 1 - (m.arrivesAt - now) / 10)) }));
    return {
      nowMs: now,
      events: sim.eventCount,
      runningHash: sim.runningHash.toString(16).padStart(8, '0'),
      servers,
      messages,
      violation: sim.violation ?? null,
      isOver: this.isOver,
      diverged: this.diverged,
      lossRate: sim.network.lossRate,
    };
  }

  private leaderNode(): SimNode | null {
    const slot = this.sim.leaderSlot();
    return slot < 0 ? null : this.sim.nodes[slot]!;
  }

  private configChange(slot: number, changes: ConfigChange[], after: () => void): string {
    const node = this.sim.nodes[slot]!;
    const what = changes.map((c) => `${c.type} ${c.id}`).join(' + ');
    this.handled(`membership ${what} at ${node.id}`);
    try {
      const index = node.core!.proposeConfigChange(changes);
      after();
      this.sim.touch(node);
      return `${what}: appended at ${index}`;
    } catch (err) {
      if (isRefusal(err)) return `${what} refused: ${(err as Error).message}`;
      throw err;
    }
  }

  private applyPartition(): void {
    const all = this.sim.nodes.map((n) => n.slot);
    const rest = all.filter((s) => !this.isolated.has(s));
    this.sim.network.partition([rest, ...[...this.isolated].map((s) => [s])]);
  }

  private handled(what: string): void {
    this.diverged = true;
    this.sim.trace(`BY HAND: ${what}`);
  }
}

/** The members a configuration names, for a view (voters, the joint phase's old voters, learners). */
export function describeMembers(c: Configuration): string {
  const outgoing = c.votersOutgoing.length > 0 ? ` joint with old {${c.votersOutgoing.join(', ')}}` : '';
  const learners = c.learners.length > 0 ? `, learners {${c.learners.join(', ')}}` : '';
  return `voters {${c.voters.join(', ')}}${outgoing}${learners}; ${members(c).length} members`;
}

function isRefusal(err: unknown): boolean {
  return err instanceof NotLeaderError || err instanceof ProposalDroppedError || err instanceof ChangeInProgressError || err instanceof InvalidConfigChangeError;
}
