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
  /** Keep-alives the leaders' lease keepers acknowledged, and leases they expired (Lease Safety). */
  readonly keepalivesAcked: number;
  readonly leasesExpired: number;
  readonly elections: number;
  readonly events: number;
  readonly messages: number;
  readonly crashes: number;
  readonly snapshotsInstalled: number;
  /** Pause faults: a node held for a while, everything for it waiting until it resumes. */
  readonly pauses: number;
  /** Local snapshots saved (and the log compacted behind them). */
  readonly snapshotsTaken: number;
  /** Of those, snapshots an idle member took (snapshotIdleTicks). */
  readonly idleSnapshots: number;
  /** Readies carried out while a local snapshot was being saved or compacted behind. */
  readonly readiesBesideSnapshot: number;
  /** Leader's snapshots whose install waited for a local snapshot in flight. */
  readonly installsWaited: number;
  /** Restarts whose state machine was loaded beside the running core (RuntimeOptions.restoring). */
  readonly restoredBeside: number;
  /** Of those, the ones restored through storage's windows over the snapshot (a SnapshotSource, as a server's restart). */
  readonly restoredInPlace: number;
  /** Of those loads, the ones a leader's snapshot made unnecessary (it was installed first). */
  readonly restoresSuperseded: number;
  /** Entries applied while a snapshot was being serialized in slices (copy-on-write in the store). */
  readonly appliedWhileSerializing: number;
  /** Crashes while a local snapshot was being saved; and of those, after its snapshot was durable but before its WAL marker was. */
  readonly crashesDuringSave: number;
  readonly crashesBetweenSaveHalves: number;
  /**
   * Messages that left before their Ready's sync had completed: a leader's AppendEntries racing
   * its own write (thesis §10.2.1), pre-votes (the runtime's Ready step 1).
   */
  readonly sentBeforeSync: number;
  /** Committed entries applied while their own Ready's sync was still in flight (Ready step 5). */
  readonly appliedBeforeSync: number;
  /** Committed entries applied straight from the core's log while a sync was in flight (early apply). */
  readonly appliedEarly: number;
  /** Commit index moves a follower made by counting the leader's announced durable copy with its own. */
  readonly followerCommits: number;
  /** Leader commit index moves checked against its voters' durable logs (Durable Majority). */
  readonly leaderCommitsChecked: number;
  readonly reads: number;
  /** Milliseconds from healing until every node applied a fresh commit; -1 if never. */
  readonly recoveryMs: number;
  /** Membership changes the core accepted (thesis §4: one configuration entry appended each). */
  readonly membershipProposed: number;
  /** Accepted membership changes whose configuration entry committed. */
  readonly membershipCommitted: number;
  /** Membership changes and leadership transfers the core refused (not leader, change in progress, ...). */
  readonly membershipRefused: number;
  readonly transfersAttempted: number;
  /** Transfers whose target became leader of a later term within two maximal election timeouts. */
  readonly transfersSucceeded: number;
  /** New servers started empty (as learners, or straight in as voters by a replace). */
  readonly serversAdded: number;
  /** Removed servers decommissioned after their removal committed. */
  readonly serversStopped: number;
  /** Vote requests from servers outside the receiver's configuration (removed ones) that a server in its leader lease ignored (thesis §4.2.3). */
  readonly removedServerVotesIgnored: number;
  /** Servers that learned they were out of the cluster (each checked by Removal Notice). */
  readonly removalNotices: number;
  /** Partitions cut along the C_old / C_new seam while a joint configuration was in force. */
  readonly seamSplits: number;
  /** Fingerprint of the whole run: equal seeds give equal hashes. */
  readonly traceHash: number;
}

/** The line the playground prints for a finished run too, so the two can be compared by eye or by a test. */
export function stateLine(r: SimResult): string {
  return `seed ${r.seed}: trace hash ${r.traceHash.toString(16).padStart(8, '0')}, ${r.commits} committed, ${r.elections} elections, ${r.events} events, ended at ${r.timeMs.toFixed(3)} ms`;
}
