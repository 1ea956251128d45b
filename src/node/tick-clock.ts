// The ticks a host gives its core (Raft.tick), counted from a monotonic clock rather than from
// timer callbacks: a host whose loop was held (a long pause, SIGSTOP, a state decode) gives every
// tick that came due meanwhile at its next chance, so the core never counts less time than has
// passed. A leader that did would stretch its lease (thesis §6.4.1) and its CheckQuorum and
// serve a lease read after the other servers' clocks could have elected another leader.
// RaftNode runs one on performance.now(), the simulator's SimNode on its event clock.

/** Ticks given at once after a long hold, at most, in election timeouts: more than any timeout in the core (a snapshot's, raft/leader.ts: five), so the rest change nothing. */
export const MAX_CATCH_UP_ELECTIONS = 6;

export class TickClock {
  private given = 0;
  private readonly maxCatchUp: number;

  /** `origin`: the clock's reading when the core started; a tick is due every `tickMs` after it. */
  constructor(
    private readonly tickMs: number,
    electionTicks: number,
    private readonly origin: number,
  ) {
    if (!(tickMs > 0)) throw new Error('tickMs must be positive');
    this.maxCatchUp = MAX_CATCH_UP_ELECTIONS * electionTicks;
  }

  /** The ticks due at `now` not given yet (at most the catch-up bound); they count as given. */
  take(now: number): number {
    // A hair of slack: a timer due at exactly k ticks must not read as k − 1 by rounding.
    const due = Math.floor((now - this.origin) / this.tickMs + 1e-6);
    if (due <= this.given) return 0;
    const n = Math.min(due - this.given, this.maxCatchUp);
    this.given = due;
    return n;
  }
}
