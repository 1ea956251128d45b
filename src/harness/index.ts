// The harness: raftkv clusters for tests, the fault suite and the benchmarks. Real `raftkv serve`
// processes (process-node.ts, process-cluster.ts) with their secure flags (cluster-security.ts),
// or full nodes inside this process (in-process-cluster.ts); one spawner (group-child.ts), one
// exit cleanup (cleanup.ts), bounded waits (wait.ts) and one HTTP exchange (http.ts).
export { cleanUpOnSignals, makeTempDir, removeAtExit, removeTempDir } from './cleanup.js';
export { ClusterSecurity } from './cluster-security.js';
export { GroupChild } from './group-child.js';
export type { ExitInfo, GroupChildOptions } from './group-child.js';
export { errorCode, exchange, ExchangeError, newAgent, parseMetrics, probe } from './http.js';
export type { Agent, ClientSecurity, ExchangeOptions, Reply } from './http.js';
export { InProcessCluster, InProcessNode } from './in-process-cluster.js';
export type { InProcessClusterOptions } from './in-process-cluster.js';
export { DEFAULT_PROCESS_CLUSTER_OPTIONS, ProcessCluster } from './process-cluster.js';
export type { Placement, ProcessClusterOptions } from './process-cluster.js';
export { childEnv, MAIN_JS, ProcessNode } from './process-node.js';
export type { ProcessNodeOptions } from './process-node.js';
export { pollUntil, sleep } from './wait.js';
