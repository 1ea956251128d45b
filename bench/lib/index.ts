// Helpers of the cluster and scale benchmarks (bench/cluster.ts, bench/scale.ts): processes and
// temp dirs, the load generator, the fill and the workload, the two systems under test and their
// clients, the disk probe, memory readings, the restart probe, profile summaries and the printed
// reports.
export { Resources, runBench, tailLogs, type Child, type SpawnOptions } from './processes.js';
export { freePorts } from '../../src/transport/free-ports.js';
export { keepAliveAgent, send, sendJson, targetOf, type HttpRequest, type HttpResponse, type HttpTarget } from './http.js';
export { runClosedLoop, type LoadOptions, type LoadResult } from './load.js';
export { maxOf, median, percentile } from './stats.js';
export { ROUTINGS, benchKey, keyIndexOf, memberIndexFor, parseRoutings, runWorkload, runWriterWorkload, type BenchWriter, type Routing, type WorkloadOptions } from './workload.js';
export type { SystemUnderTest, Workload } from './system.js';
export { keyName, raftkvWorkload, startRaftkv, startRaftkvCluster, type RaftkvCluster, type RaftkvClusterOptions } from './raftkv-cluster.js';
export { raftkvMembers, raftkvWriter, runRaftkvLoad, type RaftkvLoadOptions, type RaftkvMemberAddress, type RaftkvWriterOptions } from './raftkv-load.js';
export { findEtcd, startEtcd, startEtcdProcesses, type EtcdCluster, type EtcdClusterOptions, type EtcdProcesses } from './etcd-cluster.js';
export { PREBUILT_PUTS_MAX_KEYS, etcdWriter, runEtcdLoad, type EtcdLoadOptions, type EtcdMemberAddress, type EtcdWriterOptions } from '../grpc/etcd-load.js';
export { formatCeilingProbe, oneClientCeiling, probeCeiling, sharedDiskCeiling, type CeilingProbe, type Latency } from './ceiling-probe.js';
export { formatProfileSummary, summarizeCpuProfile, type HotSpot, type ProfileSummary } from './cpu-profile.js';
export { ResultSet, SYSTEMS, fmt, forwardingCost, formatFinalLines, formatForwardingCost, formatLevel, formatTable, markdownTable, ratio, type SystemName } from './report.js';
export { envWords, flagValue, numberFlag, rejectUnknownFlags } from './flags.js';
export { runFill, type FillOptions, type FillResult, type FillStep } from './fill.js';
export { diskBytes, memberMemory, pidsWithArgument, processMemory, readHeapSample, type HeapSample, type ProcessMemory } from './process-memory.js';
export { formatBatching, parseCounters, readCounters, type RaftkvCounters } from './raftkv-counters.js';
export { startupPhases, type StartupPhase } from './raftkv-startup.js';
export { measureRestart, type MemberRestart, type RestartResult } from './restart-probe.js';
export { RAFTKV_MAIN, startScaleEtcd, startScaleRaftkv, type LoadSpec, type MemberReading, type MemberState, type ScaleSystem, type StartOptions } from './scale-systems.js';
export {
  MetricLines, READING_PHASES, formatFillStep, formatReadings, formatRestart, formatScaleTable, formatStability, summarizeStability,
  type ReadingPhase, type Stability, type SystemReport,
} from './scale-report.js';
