// What a fault run can be asked to do: the fault kinds, the mixes that group them, and the
// options of one run with their defaults (docs/faults.md describes each).

/** Faults that cut node↔node links; they need network namespaces (netns mode). */
export const PARTITION_FAULTS = ['isolate-leader', 'halves', 'bridge', 'ring', 'one-way'] as const;
/** Faults on processes: SIGKILL and restart, SIGSTOP and SIGCONT. */
export const PROCESS_FAULTS = ['kill', 'kill-leader', 'kill-majority', 'kill-stale', 'pause-leader', 'pause'] as const;
/** Faults through the admin API: replace a member (join a new node, remove an old one), transfer. */
export const MEMBERSHIP_FAULTS = ['replace-member', 'transfer-leader'] as const;
export const FAULT_KINDS = [...PARTITION_FAULTS, ...PROCESS_FAULTS, ...MEMBERSHIP_FAULTS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Named mixes. `mixed` draws from every fault the network mode allows and, one time in three,
 * applies two at once (a partition with a pause, a kill during a partition, ...).
 */
export const FAULT_MIXES = {
  none: [],
  partition: [...PARTITION_FAULTS],
  crash: ['kill', 'kill-leader', 'kill-majority', 'kill-stale'],
  pause: ['pause-leader', 'pause'],
  membership: [...MEMBERSHIP_FAULTS],
  mixed: [...FAULT_KINDS],
} as const satisfies Record<string, readonly FaultKind[]>;
export type FaultMix = keyof typeof FAULT_MIXES;
export const FAULT_MIX_NAMES = Object.keys(FAULT_MIXES) as FaultMix[];

export function isPartitionFault(kind: FaultKind): boolean {
  return (PARTITION_FAULTS as readonly string[]).includes(kind);
}

export const NETWORK_MODES = ['auto', 'netns', 'loopback'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

export interface FaultRunOptions {
  /** Seconds of workload and faults, before the final heal and recovery. @default 60 */
  readonly timeSec: number;
  /** Seeds every decision of the run. @default random, printed */
  readonly seed: number;
  /** Founding voters: 3 or 5. @default 3 */
  readonly nodes: number;
  /** Fault mixes; faults are drawn from their union. @default ['mixed'] */
  readonly mixes: readonly FaultMix[];
  /** `auto` is netns when running as root with `ip netns`, else loopback. @default 'auto' */
  readonly network: NetworkMode;
  /** Clients of the linearizable register workload. @default 6 */
  readonly registerClients: number;
  /** Keys the register workload spreads over at any one time. @default 3 */
  readonly keys: number;
  /** A fresh set of keys every this many milliseconds, to keep each key's history checkable. @default 10000 */
  readonly keyRotateMs: number;
  /** Clients of the set workload (unique adds). @default 2 */
  readonly setClients: number;
  /** Clients of the lock workload (mutual exclusion and fencing tokens). @default 2 */
  readonly lockClients: number;
  /** Clients of the lease workload (no lease kept alive expires; lapsed ones go). @default 2 */
  readonly leaseClients: number;
  /** Watchers of the watch workload (every acknowledged write seen once, in order, across reconnects). @default 2 */
  readonly watchers: number;
  /** Mean pause between faults (ms). @default 1500 */
  readonly faultGapMs: number;
  /** Mean duration of one fault (ms). @default 2500 */
  readonly faultDurationMs: number;
  /** Timing of every node. @default 50 / 300 */
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** Where the history, fault log, node logs and summary go. @default ./faults-out/<time>-<seed> */
  readonly outDir: string;
  /** Budget of the linearizability check (ms). @default 60000 */
  readonly checkTimeMs: number;
  /** Print progress lines to stderr. @default false */
  readonly verbose: boolean;
  /**
   * HTTPS on every client port, mutual TLS between peers and --auth-file on every node (joiners
   * too), with a CA and an admin token made for the run; the harness's own requests use both.
   * @default false
   */
  readonly secure: boolean;
  /**
   * Every node's --snapshot-entries (and a tenth of it kept behind each snapshot), so that a
   * short run takes snapshots, saves, installs and compactions under the faults; null: the
   * server's default (100,000: none in a short run). @default null
   */
  readonly snapshotEntries: number | null;
}

export const DEFAULT_FAULT_RUN_OPTIONS: Omit<FaultRunOptions, 'seed' | 'outDir'> = {
  timeSec: 60,
  nodes: 3,
  mixes: ['mixed'],
  network: 'auto',
  registerClients: 6,
  keys: 3,
  keyRotateMs: 10_000,
  setClients: 2,
  lockClients: 2,
  leaseClients: 2,
  watchers: 2,
  faultGapMs: 1500,
  faultDurationMs: 2500,
  heartbeatMs: 50,
  electionMs: 300,
  checkTimeMs: 60_000,
  verbose: false,
  secure: false,
  snapshotEntries: null,
};

/** The fault kinds a run draws from, given its mixes, network mode and cluster size. */
export function faultKindsFor(mixes: readonly FaultMix[], network: 'netns' | 'loopback', nodes: number): FaultKind[] {
  const kinds = new Set<FaultKind>();
  for (const mix of mixes) for (const k of FAULT_MIXES[mix]) kinds.add(k);
  return [...kinds].filter((k) => (network === 'netns' || !isPartitionFault(k)) && (k !== 'ring' || nodes >= 5));
}
