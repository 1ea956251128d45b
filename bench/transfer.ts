// npm run bench:transfer — how long writes stop when leadership moves (issue 5). A 3-node raftkv
// cluster on 127.0.0.1 (fsync on) takes closed-loop PUTs from many clients spread over all
// nodes; the bench hands leadership round-robin N times (POST /v1/leader/transfer, thesis §3.10),
// then, for contrast, kills the leader with SIGKILL M times (restarting it each time).
//
// The write unavailability window of an event is the longest gap between two consecutive
// successful writes (as the clients see them, all clients merged) that overlaps the event: from
// the last write acknowledged before writes stopped to the first acknowledged after they resumed.
// A transfer is judged against 2 × the election timeout (the target of issue 5); a failover
// cannot beat one election timeout, since the followers must first notice the leader is gone.
//
// Run: node dist/bench/transfer.js [--transfers 10] [--failovers 3] [--clients 16]
//        [--heartbeat-ms 100] [--election-ms 1000] [--settle-ms 1000] [--timeout 180]
// Each flag may also come from the environment: BENCH_TRANSFERS, BENCH_FAILOVERS, BENCH_CLIENTS,
// BENCH_HEARTBEAT_MS, BENCH_ELECTION_MS, BENCH_SETTLE_MS, BENCH_TIMEOUT.
import type { Agent } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { memberEnv } from '../src/cli/member-env.js';
import { Resources, rejectUnknownFlags, runBench, freePorts, keepAliveAgent, percentile, send, sendJson, targetOf, tailLogs, type Child } from './lib/index.js';

const RAFTKV_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Config {
  readonly transfers: number;
  readonly failovers: number;
  readonly clients: number;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  readonly settleMs: number;
  readonly timeout: number;
}

function option(name: string, env: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.env[env];
}

function intOption(name: string, env: string, fallback: number, min: number): number {
  const raw = option(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, not "${raw}"`);
  return n;
}

function readConfig(): Config {
  rejectUnknownFlags(['transfers', 'failovers', 'clients', 'heartbeat-ms', 'election-ms', 'settle-ms', 'timeout']);
  return {
    transfers: intOption('transfers', 'BENCH_TRANSFERS', 10, 1),
    failovers: intOption('failovers', 'BENCH_FAILOVERS', 3, 0),
    clients: intOption('clients', 'BENCH_CLIENTS', 16, 1),
    heartbeatMs: intOption('heartbeat-ms', 'BENCH_HEARTBEAT_MS', 100, 1),
    electionMs: intOption('election-ms', 'BENCH_ELECTION_MS', 1000, 3),
    settleMs: intOption('settle-ms', 'BENCH_SETTLE_MS', 1000, 0),
    timeout: intOption('timeout', 'BENCH_TIMEOUT', 180, 10),
  };
}

// ---- the cluster ----------------------------------------------------------------------------

interface BenchNode {
  readonly id: string;
  readonly url: string;
  readonly args: readonly string[];
  readonly logPath: string;
  child: Child;
}

async function startCluster(res: Resources, cfg: Config): Promise<{ nodes: BenchNode[]; dir: string }> {
  const dir = res.tempDir('raftkv-bench-transfer-');
  const ports = await freePorts(6);
  const ids = ['n1', 'n2', 'n3'];
  const initialCluster = ids.map((id, i) => `${id}=127.0.0.1:${ports[2 * i]}`).join(',');
  const nodes = ids.map((id, i): BenchNode => {
    const args = [
      RAFTKV_MAIN, 'serve', '--id', id, '--data-dir', join(dir, id), '--peer-addr', `127.0.0.1:${ports[2 * i]}`,
      '--client-addr', `127.0.0.1:${ports[2 * i + 1]}`, '--initial-cluster', initialCluster,
      '--heartbeat-ms', String(cfg.heartbeatMs), '--election-ms', String(cfg.electionMs), '--log-level', 'warn',
    ];
    const logPath = join(dir, `${id}.log`);
    return { id, url: `http://127.0.0.1:${ports[2 * i + 1]}`, args, logPath, child: res.spawn(`raftkv ${id}`, process.execPath, args, { logPath, env: memberEnv(process.env) }) };
  });
  return { nodes, dir };
}

/** The node every live node names as leader, once it can commit a write; null until then. */
async function findLeader(nodes: readonly BenchNode[], timeoutMs: number): Promise<BenchNode> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const views = await Promise.all(nodes.map(async (n) => {
      try {
        const r = await sendJson(targetOf(n.url), 'GET', '/v1/status', undefined, 500);
        return r.json as { role?: string; leader?: string | null; term?: number } | null;
      } catch {
        return null;
      }
    }));
    const leaders = views.filter((v) => v?.role === 'leader');
    if (leaders.length === 1 && views.every((v) => v === null || v.leader === leaders[0]!.leader)) {
      const leader = nodes.find((n) => n.id === leaders[0]!.leader)!;
      const probe = await sendJson(targetOf(leader.url), 'PUT', '/v1/kv/bench-probe', undefined, 3000).catch(() => null);
      if (probe?.status === 200) return leader;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no leader within ${timeoutMs} ms`);
}

// ---- the load -------------------------------------------------------------------------------

/** Every acknowledged write's completion time (performance.now()), in order of completion. */
class Load {
  readonly acks: number[] = [];
  errors = 0;
  private isStopping = false;
  private readonly running: Promise<void>;
  private readonly agent: Agent;

  constructor(nodes: readonly BenchNode[], clients: number) {
    this.agent = keepAliveAgent(clients);
    const value = Buffer.alloc(128, 'transfer-bench-');
    this.running = Promise.all(Array.from({ length: clients }, async (_, c) => {
      // Client c starts at node c mod 3 and moves to the next node after any failure (a dead or
      // removed node refuses, a follower forwards, a leader in transfer answers 503).
      let at = c % nodes.length;
      for (let seq = 0; !this.isStopping; seq++) {
        let ok = false;
        try {
          const r = await send(this.agent, targetOf(nodes[at]!.url), { method: 'PUT', path: `/v1/kv/t-${c}-${seq % 1000}`, body: value, contentType: 'application/octet-stream' }, 5000);
          ok = r.status === 200;
        } catch {
          ok = false;
        }
        if (ok) {
          this.acks.push(performance.now());
        } else {
          this.errors++;
          at = (at + 1) % nodes.length;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    })).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.isStopping = true;
    await this.running;
    this.agent.destroy();
  }

  /**
   * The longest gap between consecutive acknowledgements that ends after `from` and starts
   * before the first acknowledgement at or after `resumedBy` (so the gap the event caused is in
   * it, however the event and the gap are ordered).
   */
  gapAround(from: number, resumedBy: number): { ms: number; lastBefore: number; firstAfter: number } {
    const a = this.acks;
    let end = a.findIndex((t) => t >= resumedBy);
    if (end < 0) end = a.length - 1;
    let best = { ms: 0, lastBefore: from, firstAfter: from };
    for (let i = Math.max(1, lowerBound(a, from)); i <= end; i++) {
      const gap = a[i]! - a[i - 1]!;
      if (gap > best.ms) best = { ms: gap, lastBefore: a[i - 1]!, firstAfter: a[i]! };
    }
    return best;
  }

  /** The longest gap between acknowledgements in [from, to): the noise floor with nothing happening. */
  maxGapBetween(from: number, to: number): number {
    let max = 0;
    const a = this.acks;
    for (let i = Math.max(1, lowerBound(a, from)); i < a.length && a[i]! < to; i++) max = Math.max(max, a[i]! - a[i - 1]!);
    return max;
  }

  /** Resolves once `n` acknowledgements arrived after this call (bounded). */
  async waitForAcks(n: number, timeoutMs: number): Promise<void> {
    const target = this.acks.length + n;
    const deadline = Date.now() + timeoutMs;
    while (this.acks.length < target) {
      if (Date.now() > deadline) throw new Error(`writes did not resume within ${timeoutMs} ms (${this.errors} errors)`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

function lowerBound(a: readonly number[], t: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- the events -----------------------------------------------------------------------------

interface Sample {
  readonly what: string;
  /** The write unavailability window. */
  readonly windowMs: number;
  /** The transfer call's own latency, or the time until a new leader answered for a failover. */
  readonly callMs: number;
}

async function measureTransfer(load: Load, nodes: readonly BenchNode[], i: number, cfg: Config): Promise<Sample> {
  const leader = await findLeader(nodes, 10_000);
  const target = nodes[(nodes.indexOf(leader) + 1) % nodes.length]!;
  const start = performance.now();
  const r = await sendJson(targetOf(leader.url), 'POST', '/v1/leader/transfer', { to: target.id }, cfg.electionMs * 5);
  const callMs = performance.now() - start;
  if (r.status !== 200) throw new Error(`transfer ${i + 1} to ${target.id} answered ${r.status}: ${JSON.stringify(r.json)}`);
  const resumedBy = performance.now();
  await load.waitForAcks(50, 10_000);
  const gap = load.gapAround(start, resumedBy);
  return { what: `transfer ${String(i + 1).padStart(2)}: ${leader.id} → ${target.id}`, windowMs: gap.ms, callMs };
}

async function measureFailover(res: Resources, load: Load, nodes: BenchNode[], i: number): Promise<Sample> {
  const leader = await findLeader(nodes, 10_000);
  const start = performance.now();
  leader.child.process.kill('SIGKILL');
  await leader.child.exited;
  const next = await findLeader(nodes.filter((n) => n !== leader), 15_000);
  const callMs = performance.now() - start;
  const resumedBy = performance.now();
  await load.waitForAcks(50, 15_000);
  const gap = load.gapAround(start, resumedBy);
  // Back to three nodes for the next round (it catches up from its own data dir).
  leader.child = res.spawn(`raftkv ${leader.id}`, process.execPath, leader.args, { logPath: leader.logPath, env: memberEnv(process.env) });
  return { what: `failover ${i + 1}: kill -9 ${leader.id}, ${next.id} leads`, windowMs: gap.ms, callMs };
}

function summary(samples: readonly Sample[], pick: (s: Sample) => number): { median: number; p90: number; max: number } {
  const sorted = samples.map(pick).sort((a, b) => a - b);
  return { median: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), max: sorted.at(-1) ?? NaN };
}

const ms = (x: number): string => `${x.toFixed(0)} ms`;

async function main(res: Resources): Promise<number> {
  const cfg = readConfig();
  console.log(`3 raftkv nodes on 127.0.0.1 (fsync on), --heartbeat-ms ${cfg.heartbeatMs} --election-ms ${cfg.electionMs} (timeouts drawn from [${cfg.electionMs}, ${2 * cfg.electionMs}) ms)`);
  console.log(`${cfg.clients} closed-loop clients, PUTs of 128-byte values spread over all nodes; ${cfg.transfers} transfers round-robin, then ${cfg.failovers} kill -9 failovers; ${cfg.settleMs} ms between events`);
  const { nodes } = await startCluster(res, cfg);
  try {
    await findLeader(nodes, 15_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${tailLogs(nodes.map((n) => n.child))}`);
  }
  const load = new Load(nodes, cfg.clients);
  await load.waitForAcks(500, 15_000);
  const quietFrom = performance.now();
  await new Promise((r) => setTimeout(r, cfg.settleMs));
  const floorMs = load.maxGapBetween(quietFrom, performance.now());
  const steadyRate = load.acks.filter((t) => t >= quietFrom).length / (cfg.settleMs / 1000);
  console.log(`steady state: ${steadyRate.toFixed(0)} writes/s, longest gap between acknowledgements with nothing happening: ${ms(floorMs)}\n`);

  const transfers: Sample[] = [];
  for (let i = 0; i < cfg.transfers; i++) {
    const s = await measureTransfer(load, nodes, i, cfg);
    transfers.push(s);
    console.log(`${s.what}  window ${ms(s.windowMs).padStart(7)}  transfer call ${ms(s.callMs).padStart(7)}`);
    await new Promise((r) => setTimeout(r, cfg.settleMs));
  }
  const failovers: Sample[] = [];
  for (let i = 0; i < cfg.failovers; i++) {
    const s = await measureFailover(res, load, nodes, i);
    failovers.push(s);
    console.log(`${s.what}  window ${ms(s.windowMs).padStart(7)}  new leader seen after ${ms(s.callMs).padStart(7)}`);
    // The restarted node must catch up before the next kill, or the cluster has no spare.
    await findLeader(nodes, 15_000);
    await new Promise((r) => setTimeout(r, Math.max(cfg.settleMs, 2 * cfg.electionMs)));
  }
  await load.stop();

  const limit = 2 * cfg.electionMs;
  const t = summary(transfers, (s) => s.windowMs);
  const c = summary(transfers, (s) => s.callMs);
  console.log(`\ntransfer window: median ${ms(t.median)}  p90 ${ms(t.p90)}  max ${ms(t.max)}   (2 × election timeout = ${ms(limit)})`);
  console.log(`transfer call:   median ${ms(c.median)}  p90 ${ms(c.p90)}  max ${ms(c.max)}`);
  let line = `transfer: window median=${t.median.toFixed(0)} p90=${t.p90.toFixed(0)} max=${t.max.toFixed(0)} ms vs 2×election=${limit} ms: ${t.max < limit ? 'PASS' : 'FAIL'}`;
  if (failovers.length > 0) {
    const f = summary(failovers, (s) => s.windowMs);
    console.log(`failover window: median ${ms(f.median)}  p90 ${ms(f.p90)}  max ${ms(f.max)}   (election timeout = ${ms(cfg.electionMs)})`);
    line += `; failover (kill -9): window median=${f.median.toFixed(0)} max=${f.max.toFixed(0)} ms; transfer/failover median = ${(t.median / f.median).toFixed(2)}`;
  }
  console.log(`${load.acks.length} writes acknowledged, ${load.errors} refused or failed (503s while leadership moves are expected)`);
  console.log(line);
  return t.max < limit ? 0 : 1;
}

runBench(main, () => {
  try {
    return readConfig().timeout;
  } catch {
    return 180;
  }
});
