// What one simulated run reports: the violation that stopped it, if any, and its counters.

export interface SimViolation {
  readonly invariant: string;
  readonly details: string;
  readonly timeMs: number;
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  /** Simulated time at which the run ended. */
  readonly timeMs: number;
  readonly violation: SimViolation | null;
  /** Entries committed (the committed log's length). */
  readonly commits: number;
  readonly acknowledged: number;
  readonly elections: number;
  readonly events: number;
  readonly messages: number;
  readonly crashes: number;
  readonly snapshotsInstalled: number;
  readonly reads: number;
  /** Milliseconds from healing until every node applied a fresh commit; -1 if never. */
  readonly recoveryMs: number;
  /** Fingerprint of the whole run: equal seeds give equal hashes. */
  readonly traceHash: number;
}
