// RaftNode's options with their defaults, the interfaces it depends on (a transport to send
// through, a logger), and the types it hands back (applied results, stats, StoppedError).
import { RaftError, type Configuration, type DropReason, type Message, type NodeId, type Role, type StateMachine } from '../raft/index.js';
import type { RaftStorage } from '../storage/types.js';
import type { RuntimeStats } from './runtime.js';
import type { RaftNode } from './raft-node.js';

/** Where the node's messages go; the TCP transport or a test double implements it. */
export interface PeerSender {
  /** Queues a message; it leaves within the current event-loop turn, batched with others. */
  send(m: Message): void;
  /** Writes what send() queued now: for messages on a write's critical path. */
  flush?(): void;
}

export interface NodeLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface RaftNodeOptions<R> {
  id: NodeId;
  storage: RaftStorage;
  stateMachine: StateMachine<R>;
  transport: PeerSender;
  /** The founding voters; used only when the data dir is empty. Omit to join an existing cluster. */
  initialCluster?: Configuration;
  /** @default 100 */
  heartbeatMs?: number;
  /** @default 1000 — the randomized election timeout is drawn from [electionMs, 2 × electionMs). */
  electionMs?: number;
  /** @default 100000 — applied entries between automatic snapshots */
  snapshotEntries?: number;
  /** @default 64 MiB — or fewer, once the entries applied since the last snapshot hold this many bytes (runtime.ts) */
  snapshotLogBytes?: number;
  /** @default 5000 — entries kept behind a snapshot so slightly slow followers need no snapshot */
  snapshotCatchUpEntries?: number;
  /** @default 10 — percent of the last snapshot's size the log since must hold before the next (runtime.ts); 0: off */
  snapshotLogPercent?: number;
  /**
   * @default 2000 — a member with no entry applied for this long compacts its log once the log
   * since the last snapshot holds a quarter of what snapshotEntries and snapshotLogPercent ask
   * (runtime.ts, snapshotIdleTicks): a restart after a burst then replays none of it. 0: off.
   */
  snapshotIdleMs?: number;
  /**
   * @default true — members snapshot apart (runtime.ts, snapshotStagger): the first snapshot by
   * count after a start, an idle or asked one, or an installed one waits 1 + slot/n times as long,
   * slot this member's place in id order among the n members, so the members of a cluster do not
   * all rewrite their state at once.
   */
  snapshotStagger?: boolean;
  /** @default Math.random */
  random?: () => number;
  /**
   * A `performance.now()` time by which this node's previous run had certainly stopped; a
   * process that runs one node gives 0 (the process's start). On a restart, the time since
   * counts toward the lease window and the first election timeout (RaftOptions.downTicks).
   * @default the moment of the start (nothing known)
   */
  downSinceMs?: number;
  /**
   * Called with the node as soon as its core runs on the recovered log (every start), before the
   * state machine is loaded from a snapshot. Given, start() loads the state machine beside the
   * running core: the host can deliver peer messages to the node from then on, so a restart's
   * election runs while the state is decoded (the node applies nothing, serves no read and takes
   * no snapshot until it is loaded). start() still resolves only once the state machine is
   * loaded. Without it the state machine is loaded first, then the core started. If it throws,
   * the node is stopped and start() rejects.
   */
  onCoreStarted?: (node: RaftNode<R>) => void;
  logger?: NodeLogger;
}

export const DEFAULT_NODE_OPTIONS = {
  heartbeatMs: 100,
  electionMs: 1000,
  snapshotEntries: 100_000,
  snapshotLogBytes: 64 * 1024 * 1024,
  snapshotCatchUpEntries: 5_000,
  snapshotLogPercent: 10,
  snapshotIdleMs: 2000,
  snapshotStagger: true,
} as const;

export interface Applied<R> {
  readonly index: number;
  readonly result: R;
}

/** The runtime's counters (appliedEntries, snapshots, what raced a sync), and the node's own. */
export interface NodeStats extends RuntimeStats {
  proposals: number;
  syncs: number;
  /** Durations of recent syncs in ms, for the metrics layer to drain. */
  readonly syncDurationsMs: number[];
}

/**
 * A copy of a node's view of itself and its cluster (RaftNode.status()): what the server shows
 * and decides on, without reaching into the consensus core.
 */
export interface NodeStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly currentTerm: number;
  readonly votedFor: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  /** The configuration in force (immutable). */
  readonly config: Configuration;
  /** Index of the entry that holds it (its snapshot's, if compacted). */
  readonly configIndex: number;
  /** C_old,new is in force (thesis §4.3). */
  readonly isJoint: boolean;
  /** A configuration change is not yet known committed: another must wait. */
  readonly isChangePending: boolean;
  /** Thesis §3.10: the server leadership is being handed to, if any. */
  readonly leadTransferee: NodeId | null;
  /** This node, as leader, has committed an entry of its term (§8). */
  readonly hasCommittedInTerm: boolean;
  readonly isOutOfSpace: boolean;
  /** Peer messages the core dropped unapplied, by reason (src/raft/validate.ts). */
  readonly droppedMessages: Readonly<Record<DropReason, number>>;
}

export class StoppedError extends RaftError {
  constructor() {
    super('STOPPED', 'the node is stopping');
  }
}

/**
 * The warning a node logs when the core refused a peer's AppendEntries or snapshot for
 * contradicting entries it knows committed (`contradicts-committed`, §5.4.3): never between
 * correct servers. The fault harness fails a run whose node logs hold it.
 */
export const LEADER_COMPLETENESS_ALARM = 'refused a leader whose log contradicts committed entries (Leader Completeness, §5.4.3)';

export const SILENT_LOGGER: NodeLogger = { info() {}, warn() {}, error() {} };
