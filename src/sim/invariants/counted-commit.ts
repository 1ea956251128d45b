// Counted Commit: a follower that commits by its own count (src/raft/follower.ts,
// commitFromDurableCopies) claims two durable copies of the entry, its own and its leader's,
// that together are a majority of its configuration's voters, and an entry of its current term
// (Figure 8). Checked at that moment against what each server's storage really holds (the writes
// its syncs made durable, the snapshots it installed, what a restart loaded), so a core that
// counted an unsynced copy, a copy the leader never made durable, two copies of five, or an
// earlier term's entry, is caught when it commits, not only once a divergent commit follows
// (State Machine Safety).
import type { Entry, NodeId, SnapshotMeta } from '../../raft/index.js';
import { violation, type MemberView } from './violation.js';

/** What a core tells of its own counted commits; `Raft` has these, fabricated views may not. */
export interface CountingView {
  readonly leaderId: NodeId | null;
  readonly commitsCountedAsFollower: number;
  readonly lastCountedCommit: number;
}

/** One server's durable log: the terms its storage holds, after the position it starts from. */
class DurableLog {
  private base = 0;
  private terms: number[] = [];

  /** The storage holds `entries` after `base` (a restart, an installed snapshot, a new disk). */
  restart(base: number, entries: readonly Entry[]): void {
    this.base = base;
    this.terms = entries.map((e) => e.term);
  }

  /** A sync made `entries` durable: each batch overwrites the stored log from its first index. */
  write(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0]!.index - this.base - 1;
    if (from < 0) return; // below a snapshot this storage installed: nothing of the log is there
    // Writes this checker did not see (a founding log written before the node started) are
    // unknown: NaN, which holds() takes as held, so that no run fails on what it cannot tell.
    while (this.terms.length < from) this.terms.push(Number.NaN);
    this.terms.length = from;
    for (const e of entries) this.terms.push(e.term);
  }

  /** Does storage hold entry `index` of `term`? At or below its base a durable snapshot covers it. */
  holds(index: number, term: number): boolean {
    if (index <= this.base) return true;
    const held = this.terms[index - this.base - 1];
    return held === term || (held !== undefined && Number.isNaN(held));
  }
}

/**
 * What every server's storage holds, as far as this run has seen it, by pool slot; and which
 * slot each server id was last seen at. Shared by Counted Commit and Durable Majority.
 */
export class DurableLogs {
  private readonly logs: DurableLog[];
  private readonly slotOf = new Map<NodeId, number>();

  constructor(nodes: number) {
    this.logs = Array.from({ length: nodes }, () => new DurableLog());
  }

  synced(slot: number, entries: readonly Entry[]): void {
    this.logs[slot]!.write(entries);
  }

  installed(slot: number, meta: SnapshotMeta): void {
    this.logs[slot]!.restart(meta.index, []);
  }

  /** Slot `slot` holds `entries` after `base` now (a restart; `0, []` for a new, empty disk). */
  restart(slot: number, base: number, entries: readonly Entry[]): void {
    this.logs[slot]!.restart(base, entries);
  }

  /** A new server takes slot `slot`: the id seen there before no longer names its storage. */
  reprovision(slot: number): void {
    for (const [id, at] of this.slotOf) if (at === slot) this.slotOf.delete(id);
    this.logs[slot]!.restart(0, []);
  }

  /** Server `id` was seen at `slot`. */
  seen(id: NodeId, slot: number): void {
    this.slotOf.set(id, slot);
  }

  /** Does server `id`'s storage hold entry `index` of `term`? False for a server never seen. */
  holds(id: NodeId, index: number, term: number): boolean {
    const slot = this.slotOf.get(id);
    return slot !== undefined && this.logs[slot]!.holds(index, term);
  }
}

export class CountedCommit {
  readonly logs: DurableLogs;
  private readonly seen: number[];
  /** Counted commits checked, over the run. */
  checked = 0;

  constructor(nodes: number) {
    this.logs = new DurableLogs(nodes);
    this.seen = new Array<number>(nodes).fill(0);
  }

  synced(slot: number, entries: readonly Entry[]): void {
    this.logs.synced(slot, entries);
  }

  installed(slot: number, meta: SnapshotMeta): void {
    this.logs.installed(slot, meta);
  }

  /** A new core at `slot` over storage holding `entries` after `base`; its count starts at 0. */
  restart(slot: number, base: number, entries: readonly Entry[]): void {
    this.logs.restart(slot, base, entries);
    this.seen[slot] = 0;
  }

  /** Slot `slot` hosts a new server with an empty disk. */
  reprovision(slot: number): void {
    this.logs.reprovision(slot);
    this.seen[slot] = 0;
  }

  observe(slot: number, node: MemberView & Partial<CountingView>): void {
    this.logs.seen(node.id, slot);
    const count = node.commitsCountedAsFollower;
    if (count === undefined || count <= this.seen[slot]!) return;
    this.seen[slot] = count;
    this.checked++;
    const index = node.lastCountedCommit!;
    const term = node.termAt(index);
    const leader = node.leaderId ?? null;
    const what = `${node.id} committed ${index} (term ${term}) by its own count`;
    if (term === undefined || leader === null) violation('Counted Commit', `${what} with no such entry or no leader`);
    if (node.config.votersOutgoing.length > 0) violation('Counted Commit', `${what} under a joint configuration`);
    // Figure 8 (§5.4.2): copies are counted only for an entry of the current term; an earlier
    // term's entry is committed by the one of the current term that follows it. The counting step
    // is the one observed, and it does not move the term after counting.
    if (term !== node.currentTerm) violation('Counted Commit', `${what} in term ${node.currentTerm}: only an entry of the current term is committed by counting copies`);
    if (!this.logs.holds(node.id, index, term)) violation('Counted Commit', `${what}, but its storage does not hold that entry`);
    if (!this.logs.holds(leader, index, term)) {
      violation('Counted Commit', `${what}, but its leader ${leader}'s storage does not hold that entry`);
    }
    const voters = node.config.voters;
    const copies = voters.filter((v) => v === node.id || v === leader).length;
    if (copies * 2 <= voters.length) violation('Counted Commit', `${what}: ${copies} of ${voters.length} voters is no majority`);
  }
}
