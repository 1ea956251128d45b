// Liveness after the storm: once every fault is healed and every node restarted, a leader must be
// elected and a fresh proposal must commit, and every node must apply it, within a bound (the
// simulation uses 10 maximal election timeouts). Raft promises nothing while faults continue
// (FLP), so this is the only liveness the simulator asserts.
import { violation } from './violation.js';

export class Liveness {
  private deadline = Number.POSITIVE_INFINITY;
  private healedAt = 0;
  private leaderSeenAt = -1;
  private committedAt = -1;
  private convergedAt = -1;
  private probeIndex = 0;

  get isSatisfied(): boolean {
    return this.convergedAt >= 0;
  }

  get isStarted(): boolean {
    return this.deadline !== Number.POSITIVE_INFINITY;
  }

  /** Faults healed at `now`; everything must be done by now + boundMs. */
  start(now: number, boundMs: number): void {
    this.healedAt = now;
    this.deadline = now + boundMs;
  }

  leaderElected(now: number): void {
    if (this.leaderSeenAt < 0) this.leaderSeenAt = now;
  }

  committed(now: number, index: number): void {
    if (this.committedAt < 0) {
      this.committedAt = now;
      this.probeIndex = index;
    }
  }

  converged(now: number): void {
    if (this.committedAt >= 0 && this.convergedAt < 0) this.convergedAt = now;
  }

  /** The index of the committed probe, 0 until then. */
  get committedIndex(): number {
    return this.probeIndex;
  }

  /** Milliseconds from healing to convergence, or -1. */
  get recoveryMs(): number {
    return this.convergedAt < 0 ? -1 : this.convergedAt - this.healedAt;
  }

  /** Called when the deadline passes (or at any time: it only fails once it has). */
  check(now: number, describe: () => string): void {
    if (now < this.deadline || this.isSatisfied) return;
    const bound = this.deadline - this.healedAt;
    if (this.leaderSeenAt < 0) violation('Liveness', `no leader elected within ${bound} ms of healing; ${describe()}`);
    if (this.committedAt < 0) violation('Liveness', `a leader was elected but no proposal committed within ${bound} ms of healing; ${describe()}`);
    violation('Liveness', `proposal ${this.probeIndex} committed but not every node applied it within ${bound} ms of healing; ${describe()}`);
  }
}
