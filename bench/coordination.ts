// npm run bench:coordination — raftkv's coordination service against etcd's on this machine
// (issue 12): watch fan-out, lease keep-alives and lock handoffs, each system alone on a fresh
// 3-member cluster on 127.0.0.1 (fsync on, the same heartbeat and election timing), etcd over its
// native gRPC API (bench/grpc/), raftkv over its HTTP API. The measures themselves are one piece
// of code for both (bench/lib/coordination.ts); see docs/benchmarks.md for the method.
//
// The watch measure runs twice: with the writer in a closed loop (the most events/s the
// watchers take; the lag then is mostly queueing), and at --watch-rate writes/s (the delivery lag
// when nothing queues; 0 skips it).
//
// Prints a line per measure as it finishes, a table of both systems side by side, and one
// `measure=… raftkv=X etcd=Y ratio=Z unit=…` line per measure (and routing). Exits 1 when a
// measure completed nothing, a watcher missed, repeated or reordered an event, or two lock
// contenders held the lock at once or a fencing token went backwards.
//
// Run: node dist/bench/coordination.js [--systems raftkv,etcd] [--measures watch,keepalive,lock]
//        [--seconds 5] [--warmup 1] [--watchers 1000] [--watch-rate 20] [--value-bytes 64]
//        [--drain 15] [--leases 100] [--clients 16] [--contenders 8] [--routing spread,leader]
//        [--etcd-watch-channels 1] [--etcd PATH] [--timeout SECONDS] [--raftkv-api http|etcd]
// Each flag may also come from the environment: BENCH_SYSTEMS, BENCH_MEASURES, BENCH_SECONDS,
// BENCH_WARMUP, BENCH_WATCHERS, BENCH_WATCH_RATE, BENCH_VALUE_BYTES, BENCH_DRAIN, BENCH_LEASES,
// BENCH_CLIENTS, BENCH_CONTENDERS, BENCH_ROUTING, BENCH_ETCD_WATCH_CHANNELS, ETCD_BIN, BENCH_TIMEOUT,
// BENCH_RAFTKV_API. --raftkv-api etcd: raftkv serves etcd's gRPC API too (--etcd-addr) and is
// driven by etcd's side of this benchmark (bench/grpc/etcd-coordination.ts): one client, two servers.
import { fileURLToPath } from 'node:url';
import { etcdCoordination } from './grpc/etcd-coordination.js';
import { memberUint64 } from '../src/etcd/ids.js';
import type { CoordinationTarget } from './lib/coordination-target.js';
import { runKeepAlives, runLockHandoffs, runWatchFanout, type WatchFanoutResult } from './lib/coordination.js';
import { CoordinationResults, formatCoordinationLines, formatCoordinationTable, formatKeepAliveLine, formatLockLine, formatWatchLine } from './lib/coordination-report.js';
import { serverCpuReader } from './lib/process-cpu.js';
import { raftkvCoordination } from './lib/raftkv-coordination.js';
import {
  findEtcd, flagValue, formatCeilingProbe, numberFlag, parseRoutings, probeCeiling, raftkvMembers, rejectUnknownFlags, runBench, startEtcdProcesses, startRaftkvCluster,
  type Resources, type Routing, type SystemName,
} from './lib/index.js';

const RAFTKV_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MEASURES = ['watch', 'keepalive', 'lock'] as const;
type Measure = (typeof MEASURES)[number];
/** Leases outlive any run: expiry must never be what a measure sees. */
const LEASE_TTL_SECONDS = 120;

interface Config {
  readonly systems: readonly SystemName[];
  readonly measures: readonly Measure[];
  readonly seconds: number;
  readonly warmup: number;
  readonly watchers: number;
  readonly watchRate: number;
  readonly valueBytes: number;
  readonly drain: number;
  readonly leases: number;
  readonly clients: number;
  readonly contenders: number;
  readonly routings: readonly Routing[];
  readonly etcdWatchChannels: number;
  readonly etcdPath: string | undefined;
  readonly timeout: number;
  readonly raftkvApi: 'http' | 'etcd';
}

function list<T extends string>(name: string, env: string, fallback: string, allowed: readonly T[]): T[] {
  const items = (flagValue(name, env) ?? fallback).split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = items.find((s) => !(allowed as readonly string[]).includes(s));
  if (bad !== undefined || items.length === 0) throw new Error(`--${name} takes ${allowed.join(', ')} (comma-separated), not "${bad ?? ''}"`);
  return items as T[];
}

function readConfig(): Config {
  rejectUnknownFlags(['systems', 'measures', 'seconds', 'warmup', 'watchers', 'watch-rate', 'value-bytes', 'drain', 'leases', 'clients', 'contenders', 'routing', 'etcd-watch-channels', 'etcd', 'timeout', 'raftkv-api']);
  const raftkvApi = flagValue('raftkv-api', 'BENCH_RAFTKV_API') ?? 'http';
  if (raftkvApi !== 'http' && raftkvApi !== 'etcd') throw new Error(`--raftkv-api takes http or etcd, not "${raftkvApi}"`);
  const systems = list<SystemName>('systems', 'BENCH_SYSTEMS', 'raftkv,etcd', ['raftkv', 'etcd']);
  const measures = list<Measure>('measures', 'BENCH_MEASURES', MEASURES.join(','), MEASURES);
  const routings = parseRoutings(flagValue('routing', 'BENCH_ROUTING') ?? 'spread,leader');
  const seconds = numberFlag('seconds', 'BENCH_SECONDS', 5, { min: 0.1 });
  const warmup = numberFlag('warmup', 'BENCH_WARMUP', 1, { min: 0 });
  const drain = numberFlag('drain', 'BENCH_DRAIN', 15, { min: 0 });
  const perSystem = (measures.includes('watch') ? 2 * (warmup + seconds + drain + 30) : 0) + (measures.filter((m) => m !== 'watch').length * routings.length * (warmup + seconds + 5));
  return {
    systems,
    measures,
    seconds,
    warmup,
    watchers: numberFlag('watchers', 'BENCH_WATCHERS', 1000, { min: 1, isWhole: true }),
    watchRate: numberFlag('watch-rate', 'BENCH_WATCH_RATE', 20, { min: 0 }),
    valueBytes: numberFlag('value-bytes', 'BENCH_VALUE_BYTES', 64, { min: 0, isWhole: true }),
    drain,
    leases: numberFlag('leases', 'BENCH_LEASES', 100, { min: 1, isWhole: true }),
    clients: numberFlag('clients', 'BENCH_CLIENTS', 16, { min: 1, isWhole: true }),
    contenders: numberFlag('contenders', 'BENCH_CONTENDERS', 8, { min: 1, isWhole: true }),
    routings,
    etcdWatchChannels: numberFlag('etcd-watch-channels', 'BENCH_ETCD_WATCH_CHANNELS', 1, { min: 1, isWhole: true }),
    etcdPath: flagValue('etcd', 'ETCD_BIN'),
    timeout: numberFlag('timeout', 'BENCH_TIMEOUT', Math.max(180, Math.ceil(systems.length * (perSystem + 60))), { min: 5 }),
    raftkvApi,
  };
}

/** Every measure asked for, in order, on one running system. */
async function measureSystem(t: CoordinationTarget, cfg: Config, results: CoordinationResults, serverCpu: () => number): Promise<void> {
  const r = results.of(t.system);
  // The servers' CPU over one run, per operation of it.
  const costOf = async <R>(name: string, run: () => Promise<R>, operations: (r: R) => number): Promise<[R, number]> => {
    const before = serverCpu();
    const result = await run();
    const us = ((serverCpu() - before) * 1e6) / operations(result);
    r.serverCpuUs.set(name, us);
    return [result, us];
  };
  console.log(`${t.system}: members ${t.memberNames.join(', ')}; leader ${t.memberNames[t.leaderIndex]}`);
  const ms = (s: number): number => s * 1000;
  if (cfg.measures.includes('watch')) {
    console.log(`${t.system} watch: ${t.notes.watch}; watcher i on member i mod ${t.memberNames.length}; one writer on the leader, closed loop${cfg.watchRate > 0 ? `, then at ${cfg.watchRate} writes/s` : ''}`);
    const watch = (name: string, rate: number): Promise<[WatchFanoutResult, number]> => costOf(name, () =>
      runWatchFanout(t, { watchers: cfg.watchers, warmupMs: ms(cfg.warmup), durationMs: ms(cfg.seconds), valueBytes: cfg.valueBytes, rate, drainMs: ms(cfg.drain) }), (w) => w.delivered);
    const [closed, closedUs] = await watch('watch', 0);
    r.watch = closed;
    console.log(formatWatchLine(t.system, 'closed loop', closed, closedUs));
    if (cfg.watchRate > 0) {
      const [paced, pacedUs] = await watch('watch-paced', cfg.watchRate);
      r.watchPaced = paced;
      console.log(formatWatchLine(t.system, `${cfg.watchRate}/s`, paced, pacedUs));
    }
  }
  if (cfg.measures.includes('keepalive')) {
    console.log(`${t.system} keepalive: ${t.notes.keepAlive}`);
    for (const routing of cfg.routings) {
      const [k, us] = await costOf(`keepalive/${routing}`, () =>
        runKeepAlives(t, { leases: cfg.leases, clients: cfg.clients, routing, ttlSeconds: LEASE_TTL_SECONDS, warmupMs: ms(cfg.warmup), durationMs: ms(cfg.seconds) }), (x) => x.completed);
      r.keepAlive.set(routing, k);
      console.log(formatKeepAliveLine(t.system, routing, cfg.leases, k, us));
    }
  }
  if (cfg.measures.includes('lock')) {
    console.log(`${t.system} lock: ${t.notes.lock}; each contender with its own lease`);
    for (const routing of cfg.routings) {
      const [l, us] = await costOf(`lock/${routing}`, () =>
        runLockHandoffs(t, { contenders: cfg.contenders, routing, ttlSeconds: LEASE_TTL_SECONDS, warmupMs: ms(cfg.warmup), durationMs: ms(cfg.seconds) }), (x) => x.acquisitions);
      r.lock.set(routing, l);
      console.log(formatLockLine(t.system, routing, l, us));
    }
  }
}

async function benchRaftkv(res: Resources, cfg: Config, results: CoordinationResults): Promise<void> {
  // Room for the watchers (one connection each) beside the other clients, on every member.
  const sut = await startRaftkvCluster(res, {
    mainPath: RAFTKV_MAIN,
    nodes: 3,
    profileDir: null,
    leaderTimeoutMs: 15_000,
    extraArgs: ['--max-client-connections', String(Math.max(1024, cfg.watchers + 512)), '--max-watchers', String(Math.max(10_000, cfg.watchers * 2))],
    etcdApi: cfg.raftkvApi === 'etcd',
  });
  try {
    const members = await raftkvMembers(sut.leaderUrl);
    const leaderIndex = members.findIndex((m) => m.id === sut.leaderName);
    if (leaderIndex < 0) throw new Error(`the leader ${sut.leaderName} is not among the members ${members.map((m) => m.id).join(', ')}`);
    const etcdMembers = members.map((m) => ({ id: memberUint64(m.id), name: m.id, address: sut.cluster.node(m.id).etcdAddr ?? '' }));
    const t = cfg.raftkvApi === 'etcd' ? etcdCoordination(etcdMembers, leaderIndex, { watchChannelsPerMember: cfg.etcdWatchChannels, system: 'raftkv' }) : raftkvCoordination(members, leaderIndex);
    if (cfg.raftkvApi === 'etcd') console.log(`raftkv: driven by etcd's client side of this benchmark on its etcd ports ${etcdMembers.map((m) => m.address).join(', ')}`);
    try {
      await measureSystem(t, cfg, results, serverCpuReader(sut.cluster.allNodes.map((n) => n.dataDir)));
    } finally {
      t.close();
    }
  } finally {
    await sut.stop();
  }
}

async function benchEtcd(res: Resources, cfg: Config, results: CoordinationResults): Promise<void> {
  const binary = findEtcd(cfg.etcdPath);
  if (binary === null) {
    console.log(`etcd: not installed (no ${cfg.etcdPath ?? 'etcd on PATH or /usr/bin/etcd'}); skipping the comparison`);
    return;
  }
  const sut = await startEtcdProcesses(res, { binary, members: 3, leaderTimeoutMs: 15_000 });
  try {
    const t = etcdCoordination(sut.members, sut.leaderIndex, { watchChannelsPerMember: cfg.etcdWatchChannels });
    try {
      await measureSystem(t, cfg, results, serverCpuReader(sut.dataDirs));
    } finally {
      t.close();
    }
  } finally {
    await sut.stop();
  }
}

async function main(res: Resources): Promise<number> {
  const cfg = readConfig();
  console.log(`coordination: ${cfg.measures.join(', ')}; ${cfg.warmup} s warm-up + ${cfg.seconds} s measured each; watch: ${cfg.watchers} watchers, ${cfg.valueBytes}-byte values;`
    + ` keep-alive: ${cfg.leases} leases, ${cfg.clients} clients; lock: ${cfg.contenders} contenders; routing ${cfg.routings.join(', ')} (keep-alive and lock)`);
  console.log(formatCeilingProbe(await probeCeiling()));
  const results = new CoordinationResults();
  if (cfg.systems.includes('raftkv')) await benchRaftkv(res, cfg, results);
  if (cfg.systems.includes('etcd')) await benchEtcd(res, cfg, results);

  const shape = { watchRate: cfg.watchRate, watchers: cfg.watchers, leases: cfg.leases, clients: cfg.clients, contenders: cfg.contenders, routings: cfg.routings };
  console.log(`\nresults (${new Date().toISOString()}; latencies in ms; ratio = raftkv ÷ etcd):`);
  console.log(formatCoordinationTable(results, shape));
  console.log('');
  for (const line of formatCoordinationLines(results, shape)) console.log(line);
  const problems = results.problems();
  for (const p of problems) console.log(`PROBLEM: ${p}`);
  return problems.length > 0 ? 1 : 0;
}

runBench(main, () => {
  try {
    return readConfig().timeout;
  } catch {
    return 180;
  }
});
