// The fault harness: real raftkv processes under a seeded schedule of partitions, crashes,
// pauses and membership changes, with recorded client workloads checked at the end
// (docs/faults.md). The command line is main.ts (`npm run faults`).
export { runFaults, verdictLine, VERDICTS } from './run.js';
export type { FaultRunSummary, Verdict } from './run.js';
export {
  DEFAULT_FAULT_RUN_OPTIONS,
  FAULT_KINDS,
  FAULT_MIXES,
  FAULT_MIX_NAMES,
  MEMBERSHIP_FAULTS,
  NETWORK_MODES,
  PARTITION_FAULTS,
  PROCESS_FAULTS,
  faultKindsFor,
} from './options.js';
export type { FaultKind, FaultMix, FaultRunOptions, NetworkMode } from './options.js';
export { canUseNetns, destroyNamespaces, listNamespaces, sweepStaleNamespaces } from './netns.js';
export type { FaultEvent } from './nemesis.js';
export type { RecordedOp } from './workloads.js';
