// npm run bench — raftkv against etcd on this machine (issue 4). Starts a 3-node raftkv cluster
// on 127.0.0.1 (fsync on), drives closed-loop PUTs of 256-byte values at the leader at several
// concurrencies, stops it; then does the same to a 3-member etcd cluster through etcd's JSON
// gateway, if etcd is installed. Each system runs alone. Prints ops/s, p50 and p99 per level,
// the ratio raftkv/etcd, and one `level=N raftkv=X ops/s etcd=Y ops/s ratio=Z` line per level.
//
// Run: node dist/bench/cluster.js [--levels 1,16,256] [--seconds 5] [--warmup 1] [--keys 10000]
//        [--value-bytes 256] [--systems raftkv,etcd] [--etcd PATH] [--profile DIR] [--timeout 120]
// Each flag may also come from the environment: BENCH_LEVELS, BENCH_SECONDS, BENCH_WARMUP,
// BENCH_KEYS, BENCH_VALUE_BYTES, BENCH_SYSTEMS, ETCD_BIN, BENCH_PROFILE, BENCH_TIMEOUT.
// --profile DIR: every raftkv node writes DIR/<id>.cpuprofile; the leader's is summarized.
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Resources, rejectUnknownFlags, runBench, etcdWorkload, findEtcd, formatFinalLine, formatLevel, formatProfileSummary, formatTable, raftkvWorkload,
  runClosedLoop, startEtcd, startRaftkv, summarizeCpuProfile, targetOf, type LoadResult, type SystemUnderTest, type Workload,
} from './lib/index.js';

// Relative to this compiled file, so it works from dist/ and from a private dist-*/ build alike.
const RAFTKV_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Config {
  readonly levels: readonly number[];
  readonly seconds: number;
  readonly warmup: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly systems: readonly string[];
  readonly etcdPath: string | undefined;
  readonly profileDir: string | null;
  readonly timeout: number;
}

function option(name: string, env: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.env[env];
}

function numberOption(name: string, env: string, fallback: number, min: number): number {
  const raw = option(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, not "${raw}"`);
  return n;
}

function readConfig(): Config {
  rejectUnknownFlags(['levels', 'systems', 'profile', 'seconds', 'warmup', 'keys', 'value-bytes', 'etcd', 'timeout']);
  const levels = (option('levels', 'BENCH_LEVELS') ?? '1,16,256').split(',').map((s) => Number(s.trim()));
  if (levels.some((c) => !Number.isInteger(c) || c < 1 || c > 4096)) throw new Error('--levels must be whole numbers from 1 to 4096, like 1,16,256');
  const systems = (option('systems', 'BENCH_SYSTEMS') ?? 'raftkv,etcd').split(',').map((s) => s.trim());
  if (systems.some((s) => s !== 'raftkv' && s !== 'etcd')) throw new Error('--systems takes raftkv, etcd or both');
  const profile = option('profile', 'BENCH_PROFILE');
  return {
    levels,
    seconds: numberOption('seconds', 'BENCH_SECONDS', 5, 0.1),
    warmup: numberOption('warmup', 'BENCH_WARMUP', 1, 0),
    keys: Math.floor(numberOption('keys', 'BENCH_KEYS', 10_000, 1)),
    valueBytes: Math.floor(numberOption('value-bytes', 'BENCH_VALUE_BYTES', 256, 0)),
    systems,
    etcdPath: option('etcd', 'ETCD_BIN'),
    profileDir: profile === undefined || profile === '' ? null : resolve(profile),
    timeout: numberOption('timeout', 'BENCH_TIMEOUT', 120, 5),
  };
}

async function runLevels(sut: SystemUnderTest, workload: Workload, cfg: Config): Promise<Map<number, LoadResult>> {
  console.log(`${sut.name}: leader ${sut.leaderName} at ${sut.leaderUrl}; load through ${sut.note}`);
  const results = new Map<number, LoadResult>();
  const { requests } = workload;
  for (const concurrency of cfg.levels) {
    const r = await runClosedLoop({
      target: targetOf(sut.leaderUrl),
      concurrency,
      warmupMs: cfg.warmup * 1000,
      durationMs: cfg.seconds * 1000,
      // 7919 is prime, so consecutive requests walk every key in a scattered order.
      nextRequest: (n) => requests[(n * 7919) % requests.length]!,
      isOk: workload.isOk,
    });
    results.set(concurrency, r);
    console.log(formatLevel(sut.name, r));
  }
  return results;
}

async function main(res: Resources): Promise<number> {
  const cfg = readConfig();
  // Printable bytes, the same for both systems; raftkv gets them raw, etcd base64 in JSON.
  const value = Buffer.alloc(cfg.valueBytes, 'raftkv-bench-value-');
  const perSystem = cfg.levels.length * (cfg.warmup + cfg.seconds);
  console.log(`closed-loop PUTs of ${cfg.valueBytes}-byte values over ${cfg.keys} keys; levels ${cfg.levels.join(', ')}; ${cfg.warmup} s warm-up + ${cfg.seconds} s measured per level (~${Math.ceil(perSystem)} s per system)`);
  console.log('client: node:http with a keep-alive Agent (maxSockets = concurrency), the same for both systems, on this machine');

  let raftkv: Map<number, LoadResult> = new Map();
  if (cfg.systems.includes('raftkv')) {
    if (cfg.profileDir !== null) mkdirSync(cfg.profileDir, { recursive: true });
    const sut = await startRaftkv(res, { mainPath: RAFTKV_MAIN, nodes: 3, profileDir: cfg.profileDir, leaderTimeoutMs: 15_000 });
    try {
      raftkv = await runLevels(sut, raftkvWorkload(cfg.keys, value), cfg);
    } finally {
      await sut.stop();
    }
    if (cfg.profileDir !== null) {
      const file = join(cfg.profileDir, `${sut.leaderName}.cpuprofile`);
      if (existsSync(file)) console.log(`\nleader ${sut.leaderName}: ${file}\n${formatProfileSummary(summarizeCpuProfile(file, 15))}\n`);
      else console.log(`\nno CPU profile at ${file} (the leader did not exit cleanly)\n`);
    }
  }

  let etcd: Map<number, LoadResult> | null = null;
  if (cfg.systems.includes('etcd')) {
    const binary = findEtcd(cfg.etcdPath);
    if (binary === null) {
      console.log(`etcd: not installed (no ${cfg.etcdPath ?? 'etcd on PATH or /usr/bin/etcd'}); skipping the comparison`);
    } else {
      const sut = await startEtcd(res, { binary, members: 3, leaderTimeoutMs: 15_000 });
      try {
        etcd = await runLevels(sut, etcdWorkload(cfg.keys, value), cfg);
      } finally {
        await sut.stop();
      }
    }
  }

  const via = etcd === null ? '' : '; etcd is reached through its HTTP/JSON gRPC gateway, not native gRPC';
  console.log(`\nresults (${new Date().toISOString()}${via}):`);
  console.log(formatTable(cfg.levels, raftkv, etcd));
  for (const c of cfg.levels) console.log(formatFinalLine(c, raftkv.get(c), etcd?.get(c)));
  const failed = [...raftkv.values(), ...(etcd?.values() ?? [])].some((r) => r.ops === 0);
  return failed ? 1 : 0;
}

runBench(main, () => {
  try {
    return readConfig().timeout;
  } catch {
    return 120;
  }
});
