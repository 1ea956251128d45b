// Helpers of the cluster benchmark (bench/cluster.ts): processes and temp dirs, the load
// generator and the workload, the two systems under test and their clients, the disk probe,
// profile summaries and the printed report.
export { Resources, runBench, tailLogs, type Child, type SpawnOptions } from './processes.js';
export { freePorts } from '../../src/transport/free-ports.js';
export { keepAliveAgent, send, sendJson, targetOf, type HttpRequest, type HttpResponse, type HttpTarget } from './http.js';
export { runClosedLoop, type LoadOptions, type LoadResult } from './load.js';
export { percentile } from './stats.js';
export { ROUTINGS, benchKey, keyIndexOf, memberIndexFor, parseRoutings, runWorkload, runWriterWorkload, type BenchWriter, type Routing, type WorkloadOptions } from './workload.js';
export type { SystemUnderTest, Workload } from './system.js';
export { keyName, raftkvWorkload, startRaftkv, type RaftkvClusterOptions } from './raftkv-cluster.js';
export { raftkvMembers, raftkvWriter, runRaftkvLoad, type RaftkvLoadOptions, type RaftkvMemberAddress, type RaftkvWriterOptions } from './raftkv-load.js';
export { findEtcd, startEtcd, type EtcdCluster, type EtcdClusterOptions } from './etcd-cluster.js';
export { PREBUILT_PUTS_MAX_KEYS, etcdWriter, runEtcdLoad, type EtcdLoadOptions, type EtcdMemberAddress, type EtcdWriterOptions } from '../grpc/etcd-load.js';
export { formatCeilingProbe, oneClientCeiling, probeCeiling, type CeilingProbe, type Latency } from './ceiling-probe.js';
export { formatProfileSummary, summarizeCpuProfile, type HotSpot, type ProfileSummary } from './cpu-profile.js';
export { ResultSet, SYSTEMS, forwardingCost, formatFinalLines, formatForwardingCost, formatLevel, formatTable, ratio, type SystemName } from './report.js';
export { rejectUnknownFlags } from './flags.js';
