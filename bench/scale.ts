// npm run bench:scale — raftkv against etcd at a million keys (issue 11): memory, a full-cluster
// crash and restart, and throughput over minutes, each system in turn in one run on this machine.
// For each system (3 members on 127.0.0.1, the same starters, clients and timing as `npm run
// bench`):
//   1. load: every one of --keys keys written once, --value-bytes each, by --clients closed-loop
//      clients aimed at the leader; the rate per 10 % of the keys and the total time;
//   2. memory: every member's RSS (VmRSS, and VmHWM its peak), heap in use (raftkv: V8 heapUsed
//      and ArrayBuffers, from a probe preloaded into the node; etcd: Go heap in use from its
//      /metrics) and data dir size, after the load and again after --settle-seconds;
//   3. restart: SIGKILL to every member at once, all started again with the same flags and data
//      dirs; the time from the spawn to the first acknowledged PUT (one writer per member, over
//      fresh connections, retrying every 20 ms), and per member to serving and ready;
//   4. stability: --stability-seconds of closed-loop PUTs over the same keys from --clients
//      clients spread over the members; ops/s per --window-seconds window, and the last minute's
//      rate ÷ the first minute's (at most half the run each); then the memory again.
// Prints a line per step, a table of both systems and `metric=… system=… value=…` lines.
//
// Run: node dist/bench/scale.js [--keys 1000000] [--value-bytes 256] [--clients 256]
//        [--settle-seconds 10] [--stability-seconds 300] [--window-seconds 10]
//        [--restart-timeout-seconds 60] [--restarts 1 [--other-main OTHER/dist/src/cli/main.js] [--other-env NAME=VALUE,…]]
//        [--systems raftkv,etcd] [--etcd PATH] [--timeout SECONDS]
// Smoke run: node dist/bench/scale.js --keys 20000 --stability-seconds 20
// Each flag may also come from the environment: SCALE_KEYS, BENCH_VALUE_BYTES, SCALE_CLIENTS,
// SCALE_SETTLE_SECONDS, SCALE_STABILITY_SECONDS, SCALE_WINDOW_SECONDS, SCALE_RESTART_TIMEOUT_SECONDS, SCALE_RESTARTS, SCALE_OTHER_MAIN, SCALE_OTHER_ENV,
// BENCH_SYSTEMS, ETCD_BIN, BENCH_TIMEOUT.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import {
  MetricLines, findEtcd, flagValue, formatFillStep, formatReadings, formatRestart, formatScaleTable, formatStability, measureRestart, median, memberMemory, numberFlag, rejectUnknownFlags,
  RAFTKV_MAIN, runBench, runFill, startScaleEtcd, startScaleRaftkv, summarizeStability, type FillResult, type LoadResult, type MemberReading, type ReadingPhase, type Resources, type RestartResult,
  type ScaleSystem, type Stability, type SystemName, type SystemReport,
} from './lib/index.js';

interface Config {
  readonly keys: number;
  readonly valueBytes: number;
  readonly clients: number;
  readonly settleSeconds: number;
  readonly stabilitySeconds: number;
  readonly windowSeconds: number;
  readonly restartTimeoutSeconds: number;
  /** Full-cluster restarts timed, each from the same data dirs (a copy kept after the first kill). */
  readonly restarts: number;
  /** raftkv: every second restart runs the members from this build (an A/B on the same data). */
  readonly otherMain: string | undefined;
  /** raftkv: every second restart adds these variables to the members' environment (with or without otherMain). */
  readonly otherEnv: Readonly<Record<string, string>> | undefined;
  readonly systems: readonly SystemName[];
  readonly etcdPath: string | undefined;
  readonly timeout: number;
}

const FLAGS = ['keys', 'value-bytes', 'clients', 'settle-seconds', 'stability-seconds', 'window-seconds', 'restart-timeout-seconds', 'restarts', 'other-main', 'other-env', 'systems', 'etcd', 'timeout'];

function readConfig(): Config {
  rejectUnknownFlags(FLAGS);
  const systems = (flagValue('systems', 'BENCH_SYSTEMS') ?? 'raftkv,etcd').split(',').map((s) => s.trim());
  if (systems.length === 0 || systems.some((s) => s !== 'raftkv' && s !== 'etcd')) throw new Error('--systems takes raftkv, etcd or both');
  const keys = numberFlag('keys', 'SCALE_KEYS', 1_000_000, { min: 1, isWhole: true });
  const settleSeconds = numberFlag('settle-seconds', 'SCALE_SETTLE_SECONDS', 10, { min: 0 });
  const stabilitySeconds = numberFlag('stability-seconds', 'SCALE_STABILITY_SECONDS', 300, { min: 0 });
  const restartTimeoutSeconds = numberFlag('restart-timeout-seconds', 'SCALE_RESTART_TIMEOUT_SECONDS', 60, { min: 1 });
  const restarts = numberFlag('restarts', 'SCALE_RESTARTS', 1, { min: 1, isWhole: true });
  // A bound, not an estimate: a load at 500 writes/s, the settle, restart and stability phases,
  // and two minutes per system to start, read and stop it.
  const perSystem = keys / 500 + settleSeconds + restarts * (restartTimeoutSeconds + 30) + stabilitySeconds + 120;
  return {
    keys,
    valueBytes: numberFlag('value-bytes', 'BENCH_VALUE_BYTES', 256, { min: 0, isWhole: true }),
    clients: numberFlag('clients', 'SCALE_CLIENTS', 256, { min: 1, isWhole: true }),
    settleSeconds,
    stabilitySeconds,
    windowSeconds: numberFlag('window-seconds', 'SCALE_WINDOW_SECONDS', 10, { min: 0.1 }),
    restartTimeoutSeconds,
    restarts,
    otherMain: otherMainFlag(),
    otherEnv: otherEnvFlag(),
    systems: [...new Set(systems)] as SystemName[],
    etcdPath: flagValue('etcd', 'ETCD_BIN'),
    timeout: numberFlag('timeout', 'BENCH_TIMEOUT', Math.ceil(systems.length * perSystem), { min: 5 }),
  };
}

/** --other-main: a compiled CLI that exists, or a one-line refusal before anything starts. */
function otherMainFlag(): string | undefined {
  const path = flagValue('other-main', 'SCALE_OTHER_MAIN');
  if (path !== undefined && !existsSync(path)) throw new Error(`--other-main ${path}: no such file (another build's dist/src/cli/main.js)`);
  return path;
}

/** --other-env NAME=VALUE,…: variables for the other arm's members, or a one-line refusal. */
function otherEnvFlag(): Record<string, string> | undefined {
  const text = flagValue('other-env', 'SCALE_OTHER_ENV');
  if (text === undefined) return undefined;
  const env: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
    if (m === null) throw new Error(`--other-env ${text}: expected NAME=VALUE[,NAME=VALUE…], got "${pair}"`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

/** The other arm of an A/B, as a label. */
function otherArm(cfg: Config): string {
  const parts = [...(cfg.otherMain !== undefined ? [`the build at ${cfg.otherMain}`] : []), ...(cfg.otherEnv !== undefined ? [`with ${Object.entries(cfg.otherEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`] : [])];
  return parts.join(', ');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const machine = (): string => `load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`;

/**
 * The restart phase: `cfg.restarts` full-cluster kill -9 and restarts. With more than one, the
 * data dirs as the first kill left them are copied aside, and every later restart starts from
 * that copy again, so each replays the same log (a restart may snapshot, or take writes, that
 * would shorten the next one's replay). Returns the first (what a single restart measures);
 * prints each, and the median of the later ones: the first runs on files just written by the
 * load and the copy, and was slower by ~1 s in every run so far. With `otherMain` or
 * `otherEnv`, restarts 2, 4, … run that build or add those variables, and 3, 5, … run as usual.
 */
async function timeRestarts(cfg: Config, system: ScaleSystem, value: Buffer, metrics: MetricLines): Promise<RestartResult> {
  const kept = system.dataDirs.map((dir) => `${dir}.kept`);
  const results: RestartResult[] = [];
  const builds: ('this' | 'other')[] = [];
  try {
    for (let r = 1; r <= cfg.restarts; r++) {
      const afterKill = cfg.restarts === 1 ? undefined : (): void => {
        for (let i = 0; i < kept.length; i++) {
          if (r === 1) {
            execFileSync('cp', ['-a', system.dataDirs[i]!, kept[i]!]);
            // The lock a killed member left names its own directory's inode: a copy's would be
            // refused as held elsewhere (storage/dir-lock.ts), so the copy has none.
            rmSync(join(kept[i]!, 'raftkv.lock'), { force: true });
          } else {
            rmSync(system.dataDirs[i]!, { recursive: true, force: true });
            execFileSync('cp', ['-a', kept[i]!, system.dataDirs[i]!]);
          }
        }
        execFileSync('sync');
      };
      const alternates = (cfg.otherMain !== undefined || cfg.otherEnv !== undefined) && system.name === 'raftkv';
      const isOther = alternates && r % 2 === 0;
      const arm = !alternates ? {} : {
        ...(cfg.otherMain !== undefined ? { mainJs: isOther ? cfg.otherMain : RAFTKV_MAIN } : {}),
        ...(cfg.otherEnv !== undefined ? { env: isOther ? cfg.otherEnv : {} } : {}),
      };
      const restart = await measureRestart(system, value, cfg.restartTimeoutSeconds * 1000, afterKill, arm);
      builds.push(isOther ? 'other' : 'this');
      if (cfg.restarts > 1) console.log(`${system.name}: restart ${r} of ${cfg.restarts}${alternates ? `, ${isOther ? otherArm(cfg) : 'this build'}` : ''}`);
      console.log(formatRestart(system.name, restart, metrics));
      if (restart.firstAckMember === null) throw new Error(`no write was acknowledged within ${cfg.restartTimeoutSeconds} s of the restart`);
      results.push(restart);
    }
  } finally {
    for (const dir of kept) rmSync(dir, { recursive: true, force: true });
  }
  for (const which of ['this', 'other'] as const) {
    const acks = results.filter((_, i) => i > 0 && builds[i] === which).map((x) => x.firstAckMs);
    if (acks.length === 0) continue;
    const middle = median(acks);
    const label = cfg.otherMain === undefined && cfg.otherEnv === undefined ? '' : which === 'this' ? ' (this build)' : ` (${otherArm(cfg)})`;
    console.log(`${system.name}: first acknowledged write over restarts 2–${results.length}${label}: ${acks.map((x) => x.toFixed(0)).join(' / ')} ms, median ${middle.toFixed(0)} ms (restart 1: ${results[0]!.firstAckMs.toFixed(0)} ms)`);
    metrics.add('restart_first_ack_median_ms', system.name, { restarts: acks.length, build: which }, middle, 0);
  }
  return results[0]!;
}

/** The four phases on one system; a failure ends its run early and is reported, not thrown. */
async function benchSystem(cfg: Config, system: ScaleSystem, value: Buffer, metrics: MetricLines): Promise<SystemReport> {
  const name = system.name;
  const readings = new Map<ReadingPhase, readonly MemberReading[]>();
  let fill: FillResult | null = null;
  let restart: RestartResult | null = null;
  let stability: Stability | null = null;
  let failure: string | null = null;
  const termRises = new Map<'load' | 'stability', number>();
  const read = async (phase: ReadingPhase): Promise<void> => {
    const r = await system.readings();
    readings.set(phase, r);
    console.log(formatReadings(name, phase, r, metrics));
  };
  console.log(`${name}: data dirs ${system.dataDirs.join(', ')}`);
  try {
    // A term that rises during a phase means elections: the leader lost its followers meanwhile.
    const elections = async (phase: 'load' | 'stability', termBefore: number): Promise<string> => {
      const termAfter = await system.raftTerm();
      termRises.set(phase, termAfter - termBefore);
      metrics.add('term_rises', name, { phase }, termAfter - termBefore, 0);
      return `Raft term ${termBefore} → ${termAfter}`;
    };
    const termBeforeLoad = await system.raftTerm();
    const { writer, leaderIndex, leader } = await system.leaderWriter(cfg.clients, cfg.keys, value);
    console.log(`${name}: loading ${cfg.keys} keys of ${cfg.valueBytes} B through the leader ${leader}, ${cfg.clients} clients (${machine()})`);
    try {
      fill = await runFill({
        concurrency: cfg.clients,
        count: cfg.keys,
        write: (client, n) => writer.write(client, leaderIndex, n),
        onStep: (step) => {
          console.log(formatFillStep(name, step, cfg.keys));
          metrics.add('load_ops_per_second', name, { step: step.step, done: step.done }, step.opsPerSecond, 0);
        },
      });
    } finally {
      writer.close();
    }
    metrics.add('load_seconds', name, { keys: cfg.keys }, fill.seconds);
    metrics.add('load_errors', name, {}, fill.errors, 0);
    console.log(`${name}: loaded ${cfg.keys} keys in ${fill.seconds.toFixed(1)} s, ${fill.opsPerSecond.toFixed(0)} writes/s; ${fill.errors} failed attempts${fill.firstError !== null ? ` (first: ${fill.firstError})` : ''}; client CPU ${fill.clientCpuUsPerOp.toFixed(0)} µs/write; ${await elections('load', termBeforeLoad)}`);

    await read('after-load');
    if (cfg.settleSeconds > 0) await sleep(cfg.settleSeconds * 1000);
    await read('after-settle');

    restart = await timeRestarts(cfg, system, value, metrics);

    if (cfg.stabilitySeconds > 0) {
      const durationMs = cfg.stabilitySeconds * 1000;
      const windowMs = cfg.windowSeconds * 1000;
      console.log(`${name}: stability, ${cfg.stabilitySeconds} s at ${cfg.clients} clients spread over the members (${machine()})`);
      const termBeforeStability = await system.raftTerm();
      // RSS from /proc alone: readings() would also ask etcd for its Go heap over HTTP every
      // second, load on one side of the comparison only.
      const rss = system.memberNames.map((member) => ({ member, samples: [] as number[] }));
      const sampler = setInterval(() => {
        system.dataDirs.forEach((dir, i) => {
          const bytes = memberMemory(dir)?.rssBytes;
          if (bytes !== undefined && Number.isFinite(bytes)) rss[i]!.samples.push(bytes);
        });
      }, 1000);
      let result: LoadResult;
      try {
        result = await system.runLoad({ routing: 'spread', concurrency: cfg.clients, durationMs, windowMs, keys: cfg.keys, value });
      } finally {
        clearInterval(sampler);
      }
      stability = summarizeStability(result, windowMs, durationMs, rss);
      console.log(`${formatStability(name, stability, metrics)}; ${await elections('stability', termBeforeStability)}`);
      await read('after-stability');
    }
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
    console.log(`${name}: FAILED: ${failure}`);
  } finally {
    await system.stop();
  }
  console.log(`${name}: done (${machine()})\n`);
  return { system: name, fill, readings, restart, stability, termRises, failure };
}

async function main(res: Resources): Promise<number> {
  const cfg = readConfig();
  const value = Buffer.alloc(cfg.valueBytes, 'raftkv-bench-value-');
  console.log(`scale: ${cfg.keys} keys × ${cfg.valueBytes} B, ${cfg.clients} clients, settle ${cfg.settleSeconds} s, stability ${cfg.stabilitySeconds} s in ${cfg.windowSeconds} s windows; systems ${cfg.systems.join(', ')}; bound ${cfg.timeout} s (${machine()})`);
  const metrics = new MetricLines();
  const reports: SystemReport[] = [];
  const start = { leaderTimeoutMs: 20_000 };
  if (cfg.systems.includes('raftkv')) reports.push(await benchSystem(cfg, await startScaleRaftkv(res, start), value, metrics));
  if (cfg.systems.includes('etcd')) {
    const binary = findEtcd(cfg.etcdPath);
    if (binary === null) console.log(`etcd: not installed (no ${cfg.etcdPath ?? 'etcd on PATH or /usr/bin/etcd'}); skipping the comparison`);
    else reports.push(await benchSystem(cfg, await startScaleEtcd(res, { ...start, etcdBinary: binary }), value, metrics));
  }

  console.log(`results (${new Date().toISOString()}; MB are MiB; "a / b / c" is one number per member):`);
  console.log(formatScaleTable(reports));
  console.log('');
  for (const line of metrics.lines) console.log(line);
  const isBroken = (r: SystemReport): boolean => r.failure !== null || (cfg.stabilitySeconds > 0 && (r.stability?.result.ops ?? 0) === 0);
  return reports.some(isBroken) ? 1 : 0;
}

runBench(main, () => {
  try {
    return readConfig().timeout;
  } catch {
    return 120;
  }
});
