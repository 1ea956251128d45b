// A leader that is not part of C_new steps down once C_new is committed (thesis §4.2.2: "the
// leader steps down ... once the C_new entry is committed"; until then it manages the change
// without counting itself). Judged from the leader's own view, as the rule is: its configuration
// in force is not joint, excludes it, and its commitIndex has reached that entry. A bounded
// grace (one maximal election timeout of simulated time) allows for a step down at the next
// tick rather than at once; a leader still leading after it is a violation.
import type { MemberView } from './violation.js';
import { violation } from './violation.js';

export class LeavingLeaderStepsDown {
  /** Per node: simulated time it was first seen leading outside its committed configuration. */
  private readonly since: number[];
  private readonly sinceTerm: number[];

  constructor(
    nodes: number,
    private readonly graceMs: number,
  ) {
    this.since = new Array<number>(nodes).fill(-1);
    this.sinceTerm = new Array<number>(nodes).fill(0);
  }

  observe(slot: number, node: MemberView, now: number): void {
    if (node.role !== 'leader' || !isOutside(node)) {
      this.since[slot] = -1;
      return;
    }
    if (this.since[slot]! < 0 || this.sinceTerm[slot] !== node.currentTerm) {
      this.since[slot] = now;
      this.sinceTerm[slot] = node.currentTerm;
    }
    if (now - this.since[slot]! > this.graceMs) {
      violation('Leaving Leader Steps Down', `${node.id} still leads term ${node.currentTerm} ${(now - this.since[slot]!).toFixed(0)} ms after committing the configuration at ${node.configIndex} that excludes it (${JSON.stringify(node.config.voters)})`);
    }
  }

  /** Run periodically too: a leader that is never stepped again would escape `observe`. */
  poll(slot: number, node: MemberView | null, now: number): void {
    if (node !== null && this.since[slot]! >= 0) this.observe(slot, node, now);
  }

  reset(slot: number): void {
    this.since[slot] = -1;
  }
}

function isOutside(node: MemberView): boolean {
  const c = node.config;
  return c.votersOutgoing.length === 0 && !c.voters.includes(node.id) && node.commitIndex >= node.configIndex;
}
