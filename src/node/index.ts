// The runtime (runtime.ts) that carries out the core's Readies, and RaftNode, its real-time host.
export { RaftNode } from './raft-node.js';
export { Runtime, DEFAULT_RUNTIME_OPTIONS, emptyRuntimeStats } from './runtime.js';
export type { ClockPort, Done, MessagePort, RuntimeHooks, RuntimeOptions, RuntimeStats, StoragePort, TakenSnapshot } from './runtime.js';
export { StoppedError, DEFAULT_NODE_OPTIONS, LEADER_COMPLETENESS_ALARM } from './options.js';
export type { Applied, NodeLogger, NodeStats, NodeStatus, PeerSender, RaftNodeOptions } from './options.js';
