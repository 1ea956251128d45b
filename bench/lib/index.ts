// Helpers of the cluster benchmark (bench/cluster.ts): processes and temp dirs, the load
// generator, the two systems under test, profile summaries and the printed report.
export { Resources, runBench, tailLogs, type Child, type SpawnOptions } from './processes.js';
export { freePorts } from '../../src/transport/free-ports.js';
export { keepAliveAgent, send, sendJson, targetOf, type HttpRequest, type HttpResponse, type HttpTarget } from './http.js';
export { runClosedLoop, type LoadOptions, type LoadResult } from './load.js';
export { percentile } from './stats.js';
export type { SystemUnderTest, Workload } from './system.js';
export { keyName, raftkvWorkload, startRaftkv, type RaftkvClusterOptions } from './raftkv-cluster.js';
export { etcdWorkload, findEtcd, startEtcd, type EtcdClusterOptions } from './etcd-cluster.js';
export { formatProfileSummary, summarizeCpuProfile, type HotSpot, type ProfileSummary } from './cpu-profile.js';
export { formatFinalLine, formatLevel, formatTable } from './report.js';
export { rejectUnknownFlags } from './flags.js';
