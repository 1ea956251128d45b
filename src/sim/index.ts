// The deterministic cluster simulator: seeded runs of the real core under faults, with the
// invariant checkers of ./invariants/.
export { runSeed, Simulation } from './simulation.js';
export type { SimResult, SimViolation } from './result.js';
export { stateLine } from './result.js';
export { drawProfile } from './profile.js';
export type { RunProfile } from './profile.js';
export { runSeeds, runSeedsInline } from './pool.js';
export { MAX_VOTERS, MEMBERSHIP_OPS, MIN_VOTERS, MembershipSchedule } from './membership.js';
export type { MembershipCounters, MembershipOp, MembershipTarget } from './membership.js';
export type { PoolOptions } from './pool.js';
export { DEFAULT_SIM_OPTIONS, FAULT_KINDS, parseFaults, resolveOptions } from './options.js';
export type { FaultKind, ResolvedSimOptions, SimOptions } from './options.js';
export { Rng, mix32 } from './random.js';
export { EventQueue, EVENT_KINDS } from './event-queue.js';
export type { EventKind } from './event-queue.js';
export { Network } from './network.js';
export { SimNode } from './sim-node.js';
export type { NodeHost, NodeTiming } from './sim-node.js';
export { SimStateMachine, chainHash, decodeSimSnapshot } from './state-machine.js';
export type { SimMachineState } from './state-machine.js';
export { InvariantSuite, InvariantViolation, INVARIANTS } from './invariants/index.js';
export type { InvariantName, LogView, NodeView } from './invariants/index.js';
