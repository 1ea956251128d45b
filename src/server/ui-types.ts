// What the live dashboard (/ui/) receives: one JSON object per Server-Sent Event of
// GET /v1/ui/events, the whole cluster as the serving node sees it. Types only, shared with the
// browser code in ui/ (an `import type` there, erased from the bundle).

/** One member as it describes itself over the peer channel (/v1/internal/ui-node). */
export interface UiNodeState {
  readonly id: string;
  readonly role: 'follower' | 'pre-candidate' | 'candidate' | 'leader';
  readonly term: number;
  readonly votedFor: string | null;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** The log is compacted up to here (a snapshot holds 1..snapshotIndex). */
  readonly snapshotIndex: number;
  /** The newest entries, [index, term], oldest first. */
  readonly log: readonly (readonly [number, number])[];
  readonly config: { readonly voters: readonly string[]; readonly votersOutgoing: readonly string[]; readonly learners: readonly string[] };
  readonly configIndex: number;
  readonly isChangePending: boolean;
  /** Leader only: each follower's matchIndex / nextIndex (Figure 2). */
  readonly progress: readonly { readonly id: string; readonly matchIndex: number; readonly nextIndex: number; readonly state: string }[];
  readonly alarms: readonly string[];
  /** Requests this node answered in the last seconds: per second, and latency quantiles (ms). */
  readonly requestsPerSecond: number;
  readonly writesPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number } | null;
  readonly uptimeSeconds: number;
}

export interface UiMember {
  readonly id: string;
  readonly clientUrl: string | null;
  readonly peerAddr: string | null;
  /** null when it could not be asked (down, partitioned from the serving node, starting). */
  readonly state: UiNodeState | null;
  readonly error: string | null;
  /** Milliseconds since its state was last heard. */
  readonly ageMs: number | null;
  /** Only on clusters run by `raftkv cluster`: what its supervisor did to it. */
  readonly control?: UiControlState;
}

export type UiControlState = 'running' | 'stopped' | 'paused' | 'partitioned' | 'starting';

export interface UiLeaderChange {
  readonly atMs: number;
  readonly leader: string | null;
  readonly term: number;
}

export interface UiClusterView {
  /** Wall-clock ms on the serving node. */
  readonly atMs: number;
  /** The node that gathered this view. */
  readonly via: string;
  readonly clusterId: string | null;
  readonly leader: string | null;
  readonly term: number;
  readonly members: readonly UiMember[];
  /** Newest last; bounded. */
  readonly leaderChanges: readonly UiLeaderChange[];
  /** Entries the leader applied per second (the cluster's write throughput), over the last second or so. */
  readonly appliedPerSecond: number;
  readonly alarms: readonly string[];
  /** Present only when a `raftkv cluster` supervisor relays the view and takes commands. */
  readonly controls?: { readonly actions: readonly UiControlAction[]; readonly log: readonly string[] };
}

export const UI_CONTROL_ACTIONS = ['stop', 'restart', 'pause', 'resume', 'partition', 'heal', 'write'] as const;
export type UiControlAction = (typeof UI_CONTROL_ACTIONS)[number];
