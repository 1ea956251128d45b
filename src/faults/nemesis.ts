// The nemesis: a seeded schedule of faults against the cluster. Each step waits a gap, draws a
// fault kind from the run's mixes (one time in three in a multi-kind mix, a partition and a
// process fault together), applies it, holds it for a drawn duration, and heals it. healAll()
// undoes whatever is still in force (restarts killed nodes, resumes paused ones, removes every
// blackhole route), and runs on every way out of a run.
import type { FaultCluster, NodeProcess } from './cluster.js';
import { addBlackholes, clearBlackholes } from './netns.js';
import { sleep } from '../harness/index.js';
import { isPartitionFault, type FaultKind } from './options.js';
import type { Random } from './random.js';

export interface FaultEvent {
  /** Milliseconds since the run started. */
  readonly t: number;
  readonly kind: FaultKind | 'heal-all' | 'note';
  readonly phase: 'start' | 'end' | 'info';
  readonly detail: string;
}

export interface NemesisOptions {
  readonly kinds: readonly FaultKind[];
  readonly gapMs: number;
  readonly durationMs: number;
  readonly electionMs: number;
}

const COMBINABLE: readonly FaultKind[] = ['kill', 'kill-leader', 'pause', 'pause-leader'];

export class Nemesis {
  readonly events: FaultEvent[] = [];
  /** Faults applied, by kind (a combination counts each part). */
  readonly counts = new Map<FaultKind, number>();
  private readonly killed = new Set<NodeProcess>();
  private readonly paused = new Set<NodeProcess>();
  private hasCuts = false;
  private deck: FaultKind[] = [];

  constructor(
    private readonly cluster: FaultCluster,
    private readonly rng: Random,
    private readonly options: NemesisOptions,
    private readonly now: () => number,
    private readonly onEvent: (e: FaultEvent) => void = () => undefined,
  ) {}

  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  /** Runs faults until `untilMs` (run time), healing each; the last one ends by then. */
  async run(untilMs: number, isStopped: () => boolean): Promise<void> {
    if (this.options.kinds.length === 0) return;
    for (;;) {
      const gap = this.jitter(this.options.gapMs);
      if (this.now() + gap + 500 >= untilMs || isStopped()) break;
      await sleep(gap);
      const duration = Math.min(this.jitter(this.options.durationMs), Math.max(300, untilMs - this.now() - 300));
      const kinds = this.draw();
      try {
        const undos = [];
        for (const kind of kinds) undos.push(await this.apply(kind, duration));
        await sleep(duration);
        for (const undo of undos.reverse()) await undo();
      } catch (err) {
        this.log('note', 'info', `fault ${kinds.join('+')} failed: ${err instanceof Error ? err.message : String(err)}`);
        await this.healAll();
      }
    }
  }

  /** Restarts killed nodes, resumes paused ones, clears every cut. */
  async healAll(): Promise<void> {
    const parts: string[] = [];
    for (const n of this.paused) n.resume();
    if (this.paused.size > 0) parts.push(`resumed ${[...this.paused].map((n) => n.id).join(',')}`);
    this.paused.clear();
    for (const n of this.killed) if (!n.isRunning && this.cluster.members.includes(n)) n.start();
    if (this.killed.size > 0) parts.push(`restarted ${[...this.killed].map((n) => n.id).join(',')}`);
    this.killed.clear();
    // Members that crashed on their own come back too, so recovery can be judged.
    for (const n of this.cluster.members) {
      if (!n.isRunning) {
        n.start();
        parts.push(`restarted crashed ${n.id}`);
      }
    }
    if (this.hasCuts) {
      await this.clearCuts();
      parts.push('healed the network');
    }
    this.log('heal-all', 'info', parts.join('; ') || 'nothing to heal');
  }

  private draw(): FaultKind[] {
    const kinds = this.options.kinds;
    // A shuffled deck rather than independent draws: a short run still sees every kind.
    if (this.deck.length === 0) this.deck = this.rng.shuffle(kinds);
    const first = this.deck.pop() as FaultKind;
    const partitions = kinds.filter(isPartitionFault);
    const processes = kinds.filter((k) => COMBINABLE.includes(k));
    if (partitions.length > 0 && processes.length > 0 && this.rng.float() < 1 / 3) {
      return [this.rng.pick(partitions), this.rng.pick(processes)];
    }
    return [first];
  }

  private jitter(mean: number): number {
    return Math.round(mean * (0.5 + this.rng.float()));
  }

  private log(kind: FaultEvent['kind'], phase: FaultEvent['phase'], detail: string): void {
    const e: FaultEvent = { t: Math.round(this.now()), kind, phase, detail };
    this.events.push(e);
    this.onEvent(e);
  }

  private count(kind: FaultKind): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  private running(): NodeProcess[] {
    return this.cluster.members.filter((n) => n.isRunning && !n.isPaused);
  }

  private async leaderOrAny(): Promise<NodeProcess> {
    const leader = await this.cluster.leader();
    if (leader !== null) return leader;
    return this.rng.pick(this.running().length > 0 ? this.running() : this.cluster.members);
  }

  /** Applies one fault; returns its undo. */
  private async apply(kind: FaultKind, durationMs: number): Promise<() => Promise<void>> {
    this.count(kind);
    const members = this.cluster.members;
    switch (kind) {
      case 'isolate-leader': {
        const leader = await this.leaderOrAny();
        return this.partition(kind, [[leader], members.filter((n) => n !== leader)]);
      }
      case 'halves': {
        const shuffled = this.rng.shuffle(members);
        const minority = this.rng.int(1, Math.floor(members.length / 2));
        return this.partition(kind, [shuffled.slice(0, minority), shuffled.slice(minority)]);
      }
      case 'bridge': {
        // Two sides that cannot talk, and one node that talks to both.
        const [bridge, ...rest] = this.rng.shuffle(members);
        const half = Math.floor(rest.length / 2);
        return this.cut(kind, `bridge ${bridge!.id} between ${ids(rest.slice(0, half))} | ${ids(rest.slice(half))}`, symmetric(rest.slice(0, half), rest.slice(half)));
      }
      case 'ring': {
        // Each node hears only its two neighbours in a shuffled ring: every node sees a majority
        // (itself and two others of five) but no two nodes see the same majority.
        const ring = this.rng.shuffle(members);
        const pairs: [NodeProcess, NodeProcess][] = [];
        for (let i = 0; i < ring.length; i++) {
          for (let j = 0; j < ring.length; j++) {
            const d = Math.abs(i - j);
            if (i !== j && d !== 1 && d !== ring.length - 1) pairs.push([ring[i]!, ring[j]!]);
          }
        }
        return this.cut(kind, `ring ${ids(ring)}`, pairs);
      }
      case 'one-way': {
        const leader = await this.leaderOrAny();
        const others = members.filter((n) => n !== leader);
        const variant = this.rng.int(0, 2);
        if (variant === 0) return this.cut(kind, `${leader.id} cannot send to ${ids(others)}`, others.map((o) => [leader, o]));
        if (variant === 1) return this.cut(kind, `${ids(others)} cannot send to ${leader.id}`, others.map((o) => [o, leader]));
        const [a, b] = this.rng.shuffle(members);
        return this.cut(kind, `${a!.id} cannot send to ${b!.id}`, [[a!, b!]]);
      }
      case 'kill':
        return this.kill(kind, [this.rng.pick(this.running().length > 0 ? this.running() : members)]);
      case 'kill-leader':
        return this.kill(kind, [await this.leaderOrAny()]);
      case 'kill-majority': {
        const leader = await this.leaderOrAny();
        const majority = Math.floor(members.length / 2) + 1;
        const size = this.rng.int(majority, members.length);
        const victims = [leader, ...this.rng.shuffle(members.filter((n) => n !== leader)).slice(0, size - 1)];
        return this.kill(kind, victims);
      }
      case 'kill-stale': {
        // A follower misses writes while it is down; then an election runs between it and
        // up-to-date nodes, which §5.4.1 must decide. Two ways, drawn: the leader dies as the
        // stale one comes back (the up-to-date survivors usually time out first), or every
        // up-to-date member dies, the stale one comes back alone and campaigns, and they return
        // together later: the first vote requests they see are the stale one's.
        const leader = await this.leaderOrAny();
        const follower = this.rng.pick(members.filter((n) => n !== leader));
        await this.kill(kind, [follower]);
        await sleep(durationMs);
        const isAlone = this.rng.int(0, 1) === 1;
        const upToDate = isAlone ? members.filter((n) => n !== follower && n.isRunning) : [leader];
        const undo = await this.kill(kind, upToDate);
        follower.start();
        this.killed.delete(follower);
        this.log(kind, 'info', isAlone ? `restarted ${follower.id} alone; ${ids(upToDate)} come back once it has campaigned` : `restarted ${follower.id} as ${leader.id} died`);
        if (isAlone) await sleep(2 * this.options.electionMs + 200);
        return undo;
      }
      case 'pause-leader':
      case 'pause': {
        const target = kind === 'pause-leader' ? await this.leaderOrAny() : this.rng.pick(this.running().length > 0 ? this.running() : members);
        target.pause();
        this.paused.add(target);
        // Longer than the largest election timeout, so the others elect a new leader meanwhile.
        const minimum = 2 * this.options.electionMs + 200;
        this.log(kind, 'start', `SIGSTOP ${target.id}`);
        if (durationMs < minimum) await sleep(minimum - durationMs);
        return async () => {
          target.resume();
          this.paused.delete(target);
          this.log(kind, 'end', `SIGCONT ${target.id}`);
        };
      }
      case 'replace-member': {
        const victim = this.rng.pick(members);
        this.log(kind, 'start', `joining a new node to replace ${victim.id}`);
        const added = await this.cluster.addNode();
        this.log(kind, 'info', `${added.id} is a voter; removing ${victim.id}`);
        await this.cluster.removeNode(victim);
        this.log(kind, 'end', `${victim.id} removed; members ${ids(this.cluster.members)}`);
        return async () => undefined;
      }
      case 'transfer-leader': {
        const leader = await this.cluster.leader();
        const to = this.rng.pick(members.filter((n) => n !== leader));
        const answer = await this.cluster.transferLeader(to);
        this.log(kind, 'info', `to ${to.id}: ${answer}`);
        return async () => undefined;
      }
      default: {
        const unreachable: never = kind;
        return unreachable;
      }
    }
  }

  private partition(kind: FaultKind, sides: readonly (readonly NodeProcess[])[]): Promise<() => Promise<void>> {
    const [a, b] = sides as [readonly NodeProcess[], readonly NodeProcess[]];
    return this.cut(kind, `${ids(a)} | ${ids(b)}`, symmetric(a, b));
  }

  /** Blackholes each (from, to) pair inside `from`'s namespace. */
  private async cut(kind: FaultKind, detail: string, pairs: readonly (readonly [NodeProcess, NodeProcess])[]): Promise<() => Promise<void>> {
    const byFrom = new Map<NodeProcess, string[]>();
    for (const [from, to] of pairs) {
      const list = byFrom.get(from) ?? [];
      list.push(to.peerAddr.split(':')[0] as string);
      byFrom.set(from, list);
    }
    this.hasCuts = true;
    for (const [from, addresses] of byFrom) await addBlackholes(from.namespace as string, addresses);
    this.log(kind, 'start', detail);
    return async () => {
      await this.clearCuts();
      this.log(kind, 'end', `healed ${detail}`);
    };
  }

  private async clearCuts(): Promise<void> {
    for (const n of this.cluster.allNodes) if (n.namespace !== null && this.cluster.members.includes(n)) await clearBlackholes(n.namespace);
    this.hasCuts = false;
  }

  private async kill(kind: FaultKind, victims: readonly NodeProcess[]): Promise<() => Promise<void>> {
    await Promise.all(victims.map((v) => v.kill()));
    for (const v of victims) this.killed.add(v);
    this.log(kind, 'start', `SIGKILL ${ids(victims)}`);
    return async () => {
      for (const v of victims) {
        if (!v.isRunning && this.cluster.members.includes(v)) v.start();
        this.killed.delete(v);
      }
      this.log(kind, 'end', `restarted ${ids(victims)}`);
    };
  }
}

function ids(nodes: readonly NodeProcess[]): string {
  return nodes.map((n) => n.id).join(',');
}

function symmetric(a: readonly NodeProcess[], b: readonly NodeProcess[]): [NodeProcess, NodeProcess][] {
  const pairs: [NodeProcess, NodeProcess][] = [];
  for (const x of a) for (const y of b) pairs.push([x, y], [y, x]);
  return pairs;
}
