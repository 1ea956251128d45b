// npm run bench — raftkv against etcd on this machine (issues 4 and 11). Starts a 3-node raftkv
// cluster on 127.0.0.1 (fsync on) and drives closed-loop PUTs of 256-byte values through
// raftkv's own client (src/client/) at several concurrencies and two routings, stops it; then
// does the same to a 3-member etcd cluster over etcd's native gRPC API (bench/grpc/), if etcd
// is installed. Each system runs alone. Routing "spread" aims client i at member i mod 3,
// counted from the one after the leader (followers forward); "leader" aims every client at the
// leader. Both run at every level, one after the other. Prints ops/s, p50, p99, max and errors
// per level and routing, the ratio raftkv/etcd, each system's forwarding cost
// (1 − spread/leader), and one `level=N routing=R raftkv=X etcd=Y ratio=Z raftkv_p99=..
// etcd_p99=..` line per level and routing.
//
// Run: node dist/bench/cluster.js [--levels 1,16,256] [--seconds 5] [--warmup 1] [--keys 10000]
//        [--value-bytes 256] [--systems raftkv,etcd] [--routing spread,leader] [--etcd PATH]
//        [--profile DIR] [--timeout SECONDS] [--raftkv-api http|etcd]
// Each flag may also come from the environment: BENCH_LEVELS, BENCH_SECONDS, BENCH_WARMUP,
// BENCH_KEYS, BENCH_VALUE_BYTES, BENCH_SYSTEMS, BENCH_ROUTING, ETCD_BIN, BENCH_PROFILE, BENCH_TIMEOUT.
// --profile DIR: every raftkv node writes DIR/<id>.cpuprofile; the leader's is summarized.
// --raftkv-api etcd (BENCH_RAFTKV_API): raftkv serves etcd's gRPC API too (--etcd-addr) and is
// driven by the very load generator that drives etcd (bench/grpc/): one client, two servers. The
// ratio then compares the two servers alone. Default http: raftkv's own client and HTTP API.
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftKvClient } from '../src/client/index.js';
import { EtcdChannel } from './grpc/etcd-channel.js';
import { memberUint64 } from '../src/etcd/ids.js';
import {
  ResultSet, Resources, findEtcd, formatFinalLines, formatForwardingCost, formatCeilingProbe, formatLevel, formatProfileSummary, formatTable,
  parseRoutings, probeCeiling, raftkvMembers, readCounters, formatBatching, type RaftkvCounters, envWords, rejectUnknownFlags, runBench, runEtcdLoad, runRaftkvLoad, startEtcd, startRaftkv,
  summarizeCpuProfile, type LoadResult, type Routing, type SystemName,
} from './lib/index.js';

// Relative to this compiled file, so it works from dist/ and from a private dist-*/ build alike.
const RAFTKV_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Config {
  readonly levels: readonly number[];
  readonly seconds: number;
  readonly warmup: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly systems: readonly SystemName[];
  readonly routings: readonly Routing[];
  readonly etcdPath: string | undefined;
  readonly profileDir: string | null;
  readonly timeout: number;
  /** How raftkv is driven: its own HTTP client, or etcd's gRPC load generator on its etcd port. */
  readonly raftkvApi: 'http' | 'etcd';
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
  rejectUnknownFlags(['levels', 'systems', 'routing', 'profile', 'seconds', 'warmup', 'keys', 'value-bytes', 'etcd', 'timeout', 'raftkv-api']);
  const raftkvApi = option('raftkv-api', 'BENCH_RAFTKV_API') ?? 'http';
  if (raftkvApi !== 'http' && raftkvApi !== 'etcd') throw new Error(`--raftkv-api takes http or etcd, not "${raftkvApi}"`);
  const levels = (option('levels', 'BENCH_LEVELS') ?? '1,16,256').split(',').map((s) => Number(s.trim()));
  if (levels.some((c) => !Number.isInteger(c) || c < 1 || c > 4096)) throw new Error('--levels must be whole numbers from 1 to 4096, like 1,16,256');
  const systems = (option('systems', 'BENCH_SYSTEMS') ?? 'raftkv,etcd').split(',').map((s) => s.trim());
  if (systems.some((s) => s !== 'raftkv' && s !== 'etcd')) throw new Error('--systems takes raftkv, etcd or both');
  const routings = parseRoutings(option('routing', 'BENCH_ROUTING') ?? 'spread,leader');
  const seconds = numberOption('seconds', 'BENCH_SECONDS', 5, 0.1);
  const warmup = numberOption('warmup', 'BENCH_WARMUP', 1, 0);
  const profile = option('profile', 'BENCH_PROFILE');
  // Each system: its levels × routings and its warm-up, plus a minute to start, stop and profile.
  const expected = systems.length * (levels.length * routings.length * (warmup + seconds) + 2 * warmup + 60);
  return {
    levels,
    seconds,
    warmup,
    keys: Math.floor(numberOption('keys', 'BENCH_KEYS', 10_000, 1)),
    valueBytes: Math.floor(numberOption('value-bytes', 'BENCH_VALUE_BYTES', 256, 0)),
    systems: systems as SystemName[],
    routings,
    etcdPath: option('etcd', 'ETCD_BIN'),
    profileDir: profile === undefined || profile === '' ? null : resolve(profile),
    timeout: numberOption('timeout', 'BENCH_TIMEOUT', Math.max(120, Math.ceil(expected)), 5),
    raftkvApi,
  };
}

type Run = (routing: Routing, concurrency: number, warmupMs: number, durationMs: number) => Promise<LoadResult>;

/**
 * Every level, and at each level every routing, one after the other on the same cluster. First
 * an unmeasured run at 16 spread clients for twice the warm-up, so that the first level does not
 * meet servers whose code paths (forwarding too) have never run.
 */
async function runLevels(system: SystemName, cfg: Config, results: ResultSet, run: Run): Promise<void> {
  if (cfg.warmup > 0) {
    const warm = await run('spread', 16, 2 * cfg.warmup * 1000, 0);
    console.log(`${system} warm-up: ${warm.completed} writes in ${2 * cfg.warmup} s at 16 spread clients (not measured)`);
  }
  for (const concurrency of cfg.levels) {
    for (const routing of cfg.routings) {
      const r = await run(routing, concurrency, cfg.warmup * 1000, cfg.seconds * 1000);
      results.add(system, routing, r);
      console.log(formatLevel(system, routing, r));
    }
  }
}

function leaderChangeNote(system: SystemName, before: string, after: string | null): void {
  if (after === before) return;
  console.log(`${system}: WARNING: the leader changed during the run (${before} at the start, ${after ?? 'none'} at the end); "leader" numbers after the change include forwarding`);
}

async function benchRaftkv(res: Resources, cfg: Config, value: Buffer, results: ResultSet): Promise<void> {
  if (cfg.profileDir !== null) mkdirSync(cfg.profileDir, { recursive: true });
  // BENCH_NODE_FLAGS: extra `node` flags for the raftkv members only (V8 tuning experiments).
  const nodeFlags = envWords('BENCH_NODE_FLAGS');
  // BENCH_RAFTKV_ARGS: extra `raftkv serve` flags for the members (say, --wal-segment-bytes N).
  const extraArgs = envWords('BENCH_RAFTKV_ARGS');
  const sut = await startRaftkv(res, { mainPath: RAFTKV_MAIN, nodes: 3, profileDir: cfg.profileDir, leaderTimeoutMs: 15_000, etcdApi: cfg.raftkvApi === 'etcd', nodeFlags, extraArgs });
  try {
    const members = await raftkvMembers(sut.leaderUrl);
    const leaderIndex = members.findIndex((m) => m.id === sut.leaderName);
    if (leaderIndex < 0) throw new Error(`the leader ${sut.leaderName} is not among the members ${members.map((m) => m.id).join(', ')}`);
    console.log(`raftkv: members ${members.map((m) => `${m.id} ${m.url}`).join(', ')}; leader ${sut.leaderName}; load through ${cfg.raftkvApi === 'etcd' ? "etcd's gRPC load generator (bench/grpc/) on raftkv's etcd ports" : `RaftKvClient (one per benchmark client; ${process.env['BENCH_TRANSPORT'] === undefined || process.env['BENCH_TRANSPORT'] === 'mux' ? 'sharing one raftkv-mux connection per member' : `BENCH_TRANSPORT=${process.env['BENCH_TRANSPORT']}: one HTTP/1.1 connection each`})`}`);
    const common = { members, leaderIndex, keys: cfg.keys, value };
    // The etcd load generator aimed at raftkv's etcd ports, members in the same order; answers
    // name their member by the uint64 of src/etcd/ids.ts, so misrouting is counted as for etcd.
    const etcdMembers =
      cfg.raftkvApi !== 'etcd'
        ? []
        : members.map((m) => {
            const node = sut.cluster.node(m.id);
            if (node.etcdAddr === null) throw new Error(`${m.id} serves no etcd API`);
            return { id: memberUint64(m.id), name: m.id, address: node.etcdAddr };
          });
    if (cfg.raftkvApi === 'etcd') console.log(`raftkv: driven by the etcd gRPC load generator on ${etcdMembers.map((m) => `${m.name} ${m.address}`).join(', ')}`);
    // Per applied entry on each member, measured over each level (warm-up included): how well
    // writes are batched into syncs and peer writes.
    const readAll = (): Promise<RaftkvCounters[]> => Promise.all(members.map((m) => readCounters(m.url)));
    await runLevels('raftkv', cfg, results, async (routing, concurrency, warmupMs, durationMs) => {
      const before = await readAll();
      const r =
        cfg.raftkvApi === 'etcd'
          ? await runEtcdLoad({ members: etcdMembers, leaderIndex, keys: cfg.keys, value, routing, concurrency, warmupMs, durationMs })
          : await runRaftkvLoad({ ...common, routing, concurrency, warmupMs, durationMs });
      const after = await readAll();
      const followers = members.flatMap((_, i) => (i === leaderIndex ? [] : [[before[i]!, after[i]!] as [RaftkvCounters, RaftkvCounters]]));
      console.log(`raftkv ${routing} c=${concurrency} ${formatBatching([before[leaderIndex]!, after[leaderIndex]!], followers)}`);
      return r;
    });
    const client = new RaftKvClient({ endpoints: members.map((m) => m.url), timeoutMs: 3000 });
    try {
      leaderChangeNote('raftkv', sut.leaderName, (await client.status()).leader);
    } finally {
      client.close();
    }
  } finally {
    await sut.stop();
  }
  if (cfg.profileDir !== null) {
    const file = join(cfg.profileDir, `${sut.leaderName}.cpuprofile`);
    if (existsSync(file)) console.log(`\nleader ${sut.leaderName}: ${file}\n${formatProfileSummary(summarizeCpuProfile(file, 15))}\n`);
    else console.log(`\nno CPU profile at ${file} (the leader did not exit cleanly)\n`);
  }
}

async function benchEtcd(res: Resources, cfg: Config, value: Buffer, results: ResultSet): Promise<void> {
  const binary = findEtcd(cfg.etcdPath);
  if (binary === null) {
    console.log(`etcd: not installed (no ${cfg.etcdPath ?? 'etcd on PATH or /usr/bin/etcd'}); skipping the comparison`);
    return;
  }
  const sut = await startEtcd(res, { binary, members: 3, leaderTimeoutMs: 15_000 });
  try {
    const { members, leaderIndex } = sut;
    console.log(`etcd: members ${members.map((m) => `${m.name} ${m.address}`).join(', ')}; leader ${sut.leaderName}; load through ${sut.note}`);
    const common = { members, leaderIndex, keys: cfg.keys, value };
    await runLevels('etcd', cfg, results, (routing, concurrency, warmupMs, durationMs) => runEtcdLoad({ ...common, routing, concurrency, warmupMs, durationMs }));
    const channel = new EtcdChannel(members[leaderIndex]!.address);
    try {
      const leaderId = (await channel.status(3000)).leader;
      leaderChangeNote('etcd', sut.leaderName, members.find((m) => m.id === leaderId)?.name ?? (leaderId === '0' ? null : leaderId));
    } finally {
      channel.close();
    }
  } finally {
    await sut.stop();
  }
}

async function main(res: Resources): Promise<number> {
  const cfg = readConfig();
  // Printable bytes, the same for both systems.
  const value = Buffer.alloc(cfg.valueBytes, 'raftkv-bench-value-');
  const perSystem = cfg.levels.length * cfg.routings.length * (cfg.warmup + cfg.seconds);
  console.log(`closed-loop PUTs of ${cfg.valueBytes}-byte values over ${cfg.keys} keys; levels ${cfg.levels.join(', ')}; routing ${cfg.routings.join(', ')} at each level; ${cfg.warmup} s warm-up + ${cfg.seconds} s measured each (~${Math.ceil(perSystem)} s per system)`);
  console.log(formatCeilingProbe(await probeCeiling()));

  const results = new ResultSet();
  if (cfg.systems.includes('raftkv')) await benchRaftkv(res, cfg, value, results);
  if (cfg.systems.includes('etcd')) await benchEtcd(res, cfg, value, results);

  console.log(`\nresults (${new Date().toISOString()}; ops/s, latencies in ms; ratio = raftkv ÷ etcd ops/s):`);
  console.log(formatTable(cfg.levels, cfg.routings, results));
  const costs = formatForwardingCost(cfg.levels, cfg.routings, results);
  if (costs !== '') console.log(`\nforwarding cost = 1 − spread ÷ leader ops/s:\n${costs}`);
  console.log('');
  for (const line of formatFinalLines(cfg.levels, cfg.routings, results)) console.log(line);
  const all = results.all();
  if (all.some((r) => r.ops === 0)) return 1;
  // A spread client answered by another member than it was aimed at measured something else.
  const misrouted = cfg.routings.includes('spread') && cfg.systems.some((s) => cfg.levels.some((l) => (results.get(s, l, 'spread')?.misrouted ?? 0) > 0));
  return misrouted ? 1 : 0;
}

runBench(main, () => {
  try {
    return readConfig().timeout;
  } catch {
    return 120;
  }
});
