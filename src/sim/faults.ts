// The seeded fault schedule. At seeded intervals one fault is drawn from the enabled kinds and
// applied: crash a node (often the leader) and restart it after a short or long delay; pause one
// (often the leader: a long GC, SIGSTOP) for a fraction of an election timeout to several; partition
// the cluster (isolate the leader or a random node, majority/minority, random groups) or heal it;
// cut one direction of a link; change the loss, duplication, latency or disk speed. Each is
// reversible and all of them are reverted when the run heals.
import type { Network } from './network.js';
import type { FaultKind } from './options.js';
import type { Rng } from './random.js';
import type { SimNode } from './sim-node.js';

export interface FaultTarget {
  readonly nodes: readonly SimNode[];
  readonly network: Network;
  /** Multiplies fsync latencies. */
  diskSlowFactor: number;
  crash(slot: number, restartAfterMs: number): void;
  /** Holds a node's process for `electionTimeouts` election timeouts: it handles nothing meanwhile. */
  pause(slot: number, electionTimeouts: number): void;
  leaderSlot(): number;
  trace(line: string): void;
}

/** How often each kind is drawn, relative to the others. */
const WEIGHTS: Record<FaultKind, number> = { crash: 4, pause: 2, partition: 4, oneway: 1, loss: 1, duplicate: 1, latency: 1, disk: 1 };

const LOSS_RATES = [0, 0, 0.01, 0.05, 0.1, 0.2, 0.35];
const DUPLICATE_RATES = [0, 0, 0.01, 0.05, 0.2];
const SLOW_FACTORS = [1, 1, 3, 10, 30];
const DISK_FACTORS = [1, 1, 5, 20];

export class FaultInjector {
  crashes = 0;
  pauses = 0;
  partitions = 0;

  private readonly totalWeight: number;

  constructor(
    private readonly rng: Rng,
    private readonly kinds: readonly FaultKind[],
    private readonly world: FaultTarget,
  ) {
    this.totalWeight = kinds.reduce((s, k) => s + WEIGHTS[k], 0);
  }

  /** Exponential gaps: faults cluster sometimes and leave quiet stretches at others. */
  nextDelay(meanMs: number): number {
    return this.rng.exponential(meanMs);
  }

  get isEnabled(): boolean {
    return this.kinds.length > 0;
  }

  inject(): void {
    if (this.kinds.length === 0) return;
    let roll = this.rng.next() * this.totalWeight;
    let kind = this.kinds[this.kinds.length - 1]!;
    for (const k of this.kinds) {
      roll -= WEIGHTS[k];
      if (roll < 0) {
        kind = k;
        break;
      }
    }
    switch (kind) {
      case 'crash':
        return this.crash();
      case 'pause':
        return this.pause();
      case 'partition':
        return this.partition();
      case 'oneway':
        return this.oneWay();
      case 'loss':
        this.world.network.lossRate = this.rng.pick(LOSS_RATES);
        return this.world.trace(`network loss ${(this.world.network.lossRate * 100).toFixed(0)}%`);
      case 'duplicate':
        this.world.network.duplicateRate = this.rng.pick(DUPLICATE_RATES);
        return this.world.trace(`network duplication ${(this.world.network.duplicateRate * 100).toFixed(0)}%`);
      case 'latency':
        this.world.network.slowFactor = this.rng.pick(SLOW_FACTORS);
        return this.world.trace(`network latency x${this.world.network.slowFactor}`);
      case 'disk':
        this.world.diskSlowFactor = this.rng.pick(DISK_FACTORS);
        return this.world.trace(`disk latency x${this.world.diskSlowFactor}`);
      default: {
        const never: never = kind;
        throw new Error(`unknown fault ${String(never)}`);
      }
    }
  }

  private crash(): void {
    const up = this.world.nodes.filter((n) => n.isUp);
    if (up.length === 0) return;
    const leader = this.world.leaderSlot();
    const slot = leader >= 0 && this.rng.chance(0.4) ? leader : this.rng.pick(up).slot;
    // Mostly quick bounces (a process restart), sometimes a long outage (a machine replaced).
    const delay = this.rng.chance(0.7) ? this.rng.range(5, 1000) : this.rng.range(1000, 8000);
    this.crashes++;
    this.world.crash(slot, delay);
  }

  private pause(): void {
    const up = this.world.nodes.filter((n) => n.isUp);
    if (up.length === 0) return;
    const leader = this.world.leaderSlot();
    // The leader most often: a leader held past its lease is what lease reads must survive.
    const slot = leader >= 0 && this.rng.chance(0.6) ? leader : this.rng.pick(up).slot;
    this.pauses++;
    this.world.pause(slot, this.rng.range(0.2, 3));
  }

  private partition(): void {
    const n = this.world.nodes.length;
    const net = this.world.network;
    const roll = this.rng.next();
    if (roll < 0.3) {
      net.healLinks();
      this.world.trace('links healed');
      return;
    }
    this.partitions++;
    const all = Array.from({ length: n }, (_, i) => i);
    shuffle(all, this.rng);
    if (roll < 0.5) {
      // Isolate the leader (or anyone, if there is none) from everybody.
      const leader = this.world.leaderSlot();
      const lone = leader >= 0 ? leader : all[0]!;
      net.partition([[lone], all.filter((s) => s !== lone)]);
    } else if (roll < 0.8) {
      // A majority and a minority.
      const minority = 1 + this.rng.int(Math.floor((n - 1) / 2));
      net.partition([all.slice(0, minority), all.slice(minority)]);
    } else {
      // Arbitrary groups: possibly no majority anywhere.
      const groups = 2 + this.rng.int(2);
      const parts: number[][] = Array.from({ length: groups }, () => []);
      for (const s of all) parts[this.rng.int(groups)]!.push(s);
      net.partition(parts.filter((p) => p.length > 0));
    }
    this.world.trace(`partition ${net.describe((s) => this.world.nodes[s]!.id)}`);
  }

  private oneWay(): void {
    const n = this.world.nodes.length;
    if (this.rng.chance(0.3)) {
      this.world.network.healLinks();
      this.world.trace('links healed');
      return;
    }
    const from = this.rng.int(n);
    let to = this.rng.int(n - 1);
    if (to >= from) to++;
    this.world.network.cutOneWay(from, to);
    this.world.trace(`one-way cut ${this.world.nodes[from]!.id} -/-> ${this.world.nodes[to]!.id}`);
  }
}

function shuffle(a: number[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
