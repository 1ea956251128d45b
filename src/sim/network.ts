// The simulated network between nodes: every message gets a seeded latency (base + jitter, with
// the occasional straggler, so messages reorder), may be lost or duplicated, and passes only
// links that are up. Links are cut by symmetric partitions (nodes in different groups cannot talk)
// and by one-way cuts (A reaches B, B does not reach A). A link is checked when the message is
// sent AND when it arrives, so a partition that forms while a message is in flight drops it, as
// a broken TCP connection would.
import type { Message } from '../raft/index.js';
import { EVENT_KINDS, type EventQueue } from './event-queue.js';
import type { Rng } from './random.js';

export class Network {
  lossRate = 0;
  duplicateRate = 0;
  /** Multiplies latencies during a latency spike. */
  slowFactor = 1;
  sent = 0;
  dropped = 0;

  private readonly group: Int32Array;
  private readonly cut: Uint8Array;
  private readonly blocked: Uint8Array;

  constructor(
    private readonly nodes: number,
    private readonly queue: EventQueue,
    private readonly rng: Rng,
    readonly baseLatencyMs: number,
    readonly jitterMs: number,
  ) {
    this.group = new Int32Array(nodes);
    this.cut = new Uint8Array(nodes * nodes);
    this.blocked = new Uint8Array(nodes * nodes);
  }

  isBlocked(from: number, to: number): boolean {
    return this.blocked[from * this.nodes + to] === 1;
  }

  /** Puts `m` on the wire; false if the network dropped it at once (the sender can tell). */
  send(now: number, from: number, to: number, m: Message): boolean {
    this.sent++;
    if (this.blocked[from * this.nodes + to] === 1) {
      this.dropped++;
      return false;
    }
    if (this.lossRate > 0 && this.rng.next() < this.lossRate) {
      this.dropped++;
      return true; // lost silently: the sender cannot know
    }
    this.deliverAt(now + this.latency(), from, to, m);
    if (this.duplicateRate > 0 && this.rng.next() < this.duplicateRate) this.deliverAt(now + this.latency(), from, to, m);
    return true;
  }

  /** Symmetric partition: nodes talk only within their group. */
  partition(groups: readonly (readonly number[])[]): void {
    this.group.fill(-1);
    groups.forEach((g, k) => {
      for (const slot of g) this.group[slot] = k;
    });
    // Nodes not named form a group of their own each.
    for (let i = 0; i < this.nodes; i++) if (this.group[i] === -1) this.group[i] = groups.length + i;
    this.recompute();
  }

  cutOneWay(from: number, to: number): void {
    this.cut[from * this.nodes + to] = 1;
    this.recompute();
  }

  /** Heals partitions and one-way cuts (loss, duplication and latency are separate knobs). */
  healLinks(): void {
    this.group.fill(0);
    this.cut.fill(0);
    this.recompute();
  }

  healAll(): void {
    this.healLinks();
    this.lossRate = 0;
    this.duplicateRate = 0;
    this.slowFactor = 1;
  }

  /** Groups of nodes that can talk both ways, for the trace. */
  describe(name: (slot: number) => string): string {
    const groups = new Map<number, string[]>();
    for (let i = 0; i < this.nodes; i++) {
      const g = this.group[i]!;
      groups.set(g, [...(groups.get(g) ?? []), name(i)]);
    }
    const cuts: string[] = [];
    for (let a = 0; a < this.nodes; a++) {
      for (let b = 0; b < this.nodes; b++) if (this.cut[a * this.nodes + b] === 1) cuts.push(`${name(a)}-/->${name(b)}`);
    }
    const parts = [...groups.values()].map((g) => `{${g.join(',')}}`).join(' | ');
    return cuts.length === 0 ? parts : `${parts}; cut ${cuts.join(' ')}`;
  }

  private latency(): number {
    let ms = this.baseLatencyMs + this.rng.next() * this.jitterMs;
    // A straggler now and then (a retransmission, a GC pause on the path) reorders more deeply.
    if (this.rng.next() < 0.01) ms += this.rng.next() * 10 * (this.jitterMs + 1);
    return ms * this.slowFactor;
  }

  private deliverAt(time: number, from: number, to: number, m: Message): void {
    const e = this.queue.schedule(time, EVENT_KINDS.deliver, to, 0);
    e.from = from;
    e.message = m;
  }

  private recompute(): void {
    const n = this.nodes;
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        const k = a * n + b;
        this.blocked[k] = a !== b && (this.group[a] !== this.group[b] || this.cut[k] === 1) ? 1 : 0;
      }
    }
  }
}
