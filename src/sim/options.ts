// The simulator's knobs. Timing is realistic in ratio: a 10 ms tick, heartbeats every 50 ms,
// election timeouts drawn from [300, 600) ms, against network latencies of a few ms with jitter.
export const FAULT_KINDS = ['crash', 'pause', 'partition', 'oneway', 'loss', 'duplicate', 'latency', 'disk'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface SimOptions {
  seed: number;
  /** @default 5 */
  nodes?: number;
  /** Simulated milliseconds of faults and client load before everything heals. @default 60000 */
  timeMs?: number;
  /** @default 10 */
  tickMs?: number;
  /** @default 5 */
  heartbeatTicks?: number;
  /** @default 30 */
  electionTicks?: number;
  /** The kinds of fault to inject. @default all of FAULT_KINDS */
  faults?: readonly FaultKind[];
  /** @default true */
  preVote?: boolean;
  /** @default true */
  checkQuorum?: boolean;
  /** Simulated milliseconds between whole-log pairwise checks. @default 1000 */
  fullCheckEveryMs?: number;
  /**
   * How often membership changes and leadership transfers are requested, relative to the
   * seeded base rate (a mean gap of 0.5–4 s drawn per run); 0 turns them off. @default 1
   */
  membershipRate?: number;
  /**
   * Slots beyond the founding `nodes` for servers added later (each starts empty under a fresh
   * id; a decommissioned server's slot is reused). @default 4, or 0 when membershipRate is 0
   */
  spareNodes?: number;
  /**
   * Applied entries between snapshots, instead of the seeded 16–215: a small number keeps a
   * snapshot in flight nearly all the time, beside the Readies. @default null (seeded)
   */
  snapshotEvery?: number | null;
  /** Entries kept behind a snapshot, instead of the seeded 0–39. @default null (seeded) */
  snapshotKeep?: number | null;
  /** After healing, the bound on recovery in maximal election timeouts. @default 10 */
  livenessElectionTimeouts?: number;
  /** Receives the readable event trace (elections, faults, commits); omit for speed. */
  trace?: (line: string) => void;
}

export const DEFAULT_SIM_OPTIONS = {
  nodes: 5,
  timeMs: 60_000,
  tickMs: 10,
  heartbeatTicks: 5,
  electionTicks: 30,
  faults: FAULT_KINDS,
  preVote: true,
  checkQuorum: true,
  fullCheckEveryMs: 1000,
  membershipRate: 1,
  spareNodes: 4,
  snapshotEvery: null,
  snapshotKeep: null,
  livenessElectionTimeouts: 10,
} as const satisfies Omit<Required<SimOptions>, 'seed' | 'trace'>;

export type ResolvedSimOptions = Required<Omit<SimOptions, 'trace'>> & Pick<SimOptions, 'trace'>;

export function resolveOptions(o: SimOptions): ResolvedSimOptions {
  const r: ResolvedSimOptions = {
    seed: o.seed,
    nodes: o.nodes ?? DEFAULT_SIM_OPTIONS.nodes,
    timeMs: o.timeMs ?? DEFAULT_SIM_OPTIONS.timeMs,
    tickMs: o.tickMs ?? DEFAULT_SIM_OPTIONS.tickMs,
    heartbeatTicks: o.heartbeatTicks ?? DEFAULT_SIM_OPTIONS.heartbeatTicks,
    electionTicks: o.electionTicks ?? DEFAULT_SIM_OPTIONS.electionTicks,
    faults: o.faults ?? DEFAULT_SIM_OPTIONS.faults,
    preVote: o.preVote ?? DEFAULT_SIM_OPTIONS.preVote,
    checkQuorum: o.checkQuorum ?? DEFAULT_SIM_OPTIONS.checkQuorum,
    fullCheckEveryMs: o.fullCheckEveryMs ?? DEFAULT_SIM_OPTIONS.fullCheckEveryMs,
    membershipRate: o.membershipRate ?? DEFAULT_SIM_OPTIONS.membershipRate,
    spareNodes: o.spareNodes ?? ((o.membershipRate ?? DEFAULT_SIM_OPTIONS.membershipRate) > 0 ? DEFAULT_SIM_OPTIONS.spareNodes : 0),
    snapshotEvery: o.snapshotEvery ?? DEFAULT_SIM_OPTIONS.snapshotEvery,
    snapshotKeep: o.snapshotKeep ?? DEFAULT_SIM_OPTIONS.snapshotKeep,
    livenessElectionTimeouts: o.livenessElectionTimeouts ?? DEFAULT_SIM_OPTIONS.livenessElectionTimeouts,
    trace: o.trace,
  };
  if (r.snapshotEvery !== null && (!Number.isSafeInteger(r.snapshotEvery) || r.snapshotEvery < 1)) throw new Error(`snapshotEvery must be an integer ≥ 1, got ${r.snapshotEvery}`);
  if (r.snapshotKeep !== null && (!Number.isSafeInteger(r.snapshotKeep) || r.snapshotKeep < 0)) throw new Error(`snapshotKeep must be an integer ≥ 0, got ${r.snapshotKeep}`);
  if (!(r.membershipRate >= 0) || !Number.isFinite(r.membershipRate)) throw new Error(`membershipRate must be a finite number ≥ 0, got ${r.membershipRate}`);
  if (!Number.isInteger(r.spareNodes) || r.spareNodes < 0 || r.nodes + r.spareNodes > 32) throw new Error(`spareNodes must be 0..${32 - r.nodes}, got ${r.spareNodes}`);
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) throw new Error(`seed must be a non-negative integer, got ${r.seed}`);
  if (!Number.isInteger(r.nodes) || r.nodes < 1 || r.nodes > 15) throw new Error(`nodes must be 1..15, got ${r.nodes}`);
  for (const f of r.faults) if (!FAULT_KINDS.includes(f)) throw new Error(`unknown fault kind ${String(f)}`);
  return r;
}

export function parseFaults(list: string): FaultKind[] {
  if (list === 'none' || list === '') return [];
  if (list === 'all') return [...FAULT_KINDS];
  const out: FaultKind[] = [];
  for (const name of list.split(',')) {
    const f = name.trim() as FaultKind;
    if (!FAULT_KINDS.includes(f)) throw new Error(`unknown fault kind "${name}" (known: ${FAULT_KINDS.join(', ')}, all, none)`);
    out.push(f);
  }
  return out;
}
