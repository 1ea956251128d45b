// One fault run from start to verdict: start the cluster, run the workloads and the nemesis for
// the run's time, heal everything, wait for recovery, read the set back from every replica, check
// the register history for linearizability, and write the history, the fault log and the summary.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, formatCheckResult, kvModel, renderTimelineHtml, renderViolationText, type HistoryOp, type KvInput, type KvOutput } from '../check/index.js';
import { FaultCluster } from './cluster.js';
import { sleep, type ClientSecurity } from '../harness/index.js';
import { Nemesis, type FaultEvent } from './nemesis.js';
import { LEADER_COMPLETENESS_ALARM } from '../node/index.js';
import { faultKindsFor, type FaultRunOptions } from './options.js';
import { Random } from './random.js';
import { readSet, runRegisterWorkload, runSetWorkload, type AddRecord, type RecordedOp, type RepeatRecord, type WorkloadContext } from './workloads.js';
import { checkWatches, startWatchWorkload, type WatchWorkloadResult } from './watch-workload.js';
import { checkLeases, checkLeasesLapsed, checkLocks, runLeaseWorkload, runLockWorkload, type LeaseWorkloadResult, type LockWorkloadResult } from './coordination-workloads.js';

/** Set by the netns supervisor: where node data dirs go (it removes the folder itself). */
export const DATA_ROOT_ENV = 'RAFTKV_FAULTS_DATA_ROOT';

export const VERDICTS = ['valid', 'invalid', 'inconclusive'] as const;
export type Verdict = (typeof VERDICTS)[number];

export interface FaultRunSummary {
  readonly verdict: Verdict;
  /** Why the verdict is not `valid`, one line each. */
  readonly reasons: readonly string[];
  readonly seed: number;
  readonly mixes: readonly string[];
  readonly network: 'netns' | 'loopback';
  /** TLS on both ports and bearer-token auth on every node (`--secure`). */
  readonly secure: boolean;
  /** The members' --snapshot-entries, if the run set it (`--snapshot-entries`); null: their default. */
  readonly snapshotEntries: number | null;
  /** Snapshots the members took and installed, counted since each one's last start, read at the end. */
  readonly snapshots: { taken: number; installed: number };
  readonly nodes: number;
  readonly timeSec: number;
  readonly elapsedMs: number;
  readonly ops: { total: number; ok: number; unknown: number; failed: number; reads: number; writes: number; cas: number; casOk: number };
  readonly faults: { total: number; byKind: Record<string, number> };
  readonly set: { attempted: number; acked: number; unknown: number; failed: number; present: number; lost: number; phantom: number; lostSample: string[]; phantomSample: string[] };
  /** Register writes sent again with their Idempotency-Key after a definite answer: sent, answered, and answered differently. */
  readonly repeats: { sent: number; answered: number; mismatched: number };
  readonly check: { outcome: string; line: string; elapsedMs: number };
  /** The lock workload: grant attempts, grants, and fenced writes acknowledged. */
  readonly locks: { attempts: number; grants: number; fenced: number; refusals: Record<string, number> };
  /** The lease workload: leases kept alive (then left to lapse), and the reads that probed them. */
  readonly leases: { kept: number; reads: number };
  /** The watch workload: writes acknowledged, watchers, events they saw in all, and their reconnects. */
  readonly watch: { acked: number; watchers: number; events: number; reconnects: number };
  /** Run time (ms since the workloads started) of the earliest op a check blames; null if none. */
  readonly firstAnomalyMs: number | null;
  readonly recovery: string;
  readonly convergence: string;
  readonly unexpectedExits: readonly string[];
  /** Requests of the harness refused with 401 or 403 (a sample; none in a sound run). */
  readonly authRefusals: { count: number; sample: string[] };
  readonly files: { dir: string; history: string; faults: string; summary: string; nodes: string; violation?: string; timeline?: string };
}

export async function runFaults(options: FaultRunOptions, network: 'netns' | 'loopback', netnsPrefix: string | null): Promise<FaultRunSummary> {
  const started = Date.now();
  const out = options.outDir;
  mkdirSync(out, { recursive: true });
  const files = { dir: out, history: join(out, 'history.jsonl'), faults: join(out, 'faults.log'), summary: join(out, 'summary.json'), nodes: join(out, 'nodes') };
  writeFileSync(files.faults, `# seed ${options.seed} mixes ${options.mixes.join(',')} network ${network} nodes ${options.nodes} time ${options.timeSec}s${options.secure ? ' secure' : ''}\n`);
  const say = (line: string): void => {
    if (options.verbose) process.stderr.write(`faults: ${line}\n`);
  };
  const rng = new Random(options.seed);
  const runId = `f${options.seed.toString(36)}${process.pid.toString(36)}`;
  const cluster = new FaultCluster({
    nodes: options.nodes,
    heartbeatMs: options.heartbeatMs,
    electionMs: options.electionMs,
    dataRoot: process.env[DATA_ROOT_ENV] ?? mkdtempSync(join(tmpdir(), 'raftkv-faults-')),
    logDir: files.nodes,
    netnsPrefix,
    secure: options.secure,
    snapshotEntries: options.snapshotEntries,
  });
  // Times in the history and the fault log count from the moment the workloads start.
  let t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const onEvent = (e: FaultEvent): void => {
    const line = `${(e.t / 1000).toFixed(3).padStart(9)}s ${e.phase.padEnd(5)} ${e.kind.padEnd(15)} ${e.detail}`;
    appendFileSync(files.faults, `${line}\n`);
    say(line);
  };
  const nemesis = new Nemesis(
    cluster,
    rng.fork(7),
    { kinds: faultKindsFor(options.mixes, network, options.nodes), gapMs: options.faultGapMs, durationMs: options.faultDurationMs, electionMs: options.electionMs },
    now,
    onEvent,
  );
  const reasons: string[] = [];
  let recovery = 'not reached';
  let convergence = 'not reached';
  let history: RecordedOp[] = [];
  let repeats: RepeatRecord = { sent: 0, answered: 0, mismatches: [] };
  let adds = new Map<string, AddRecord>();
  let present = new Set<string>();
  let isSetRead = false;
  let locks: LockWorkloadResult = { grants: [], fenced: [], attempts: 0, refused: 0, refusals: new Map() };
  let leases: LeaseWorkloadResult = { probes: [] };
  let watched: WatchWorkloadResult = { prefix: '', acked: new Map(), attempted: new Set(), watchers: [], startRevision: 0 };
  const authRefusals = { count: 0, sample: [] as string[] };
  const snapshots = { taken: 0, installed: 0 };
  try {
    await cluster.start();
    t0 = performance.now();
    say(`cluster of ${options.nodes} up (${network}${options.secure ? ', TLS and auth' : ''}); running ${options.timeSec}s of ${options.mixes.join('+')} faults`);
    let stopped = false;
    const ctx: WorkloadContext = {
      now,
      endpoints: () => cluster.members.map((n) => ({ id: n.id, url: n.url })),
      isStopped: () => stopped,
      security: cluster.security?.client ?? null,
      onAuthRefusal: (what) => {
        authRefusals.count++;
        if (authRefusals.sample.length < 10) authRefusals.sample.push(what);
      },
    };
    const register = runRegisterWorkload(ctx, rng.fork(1), { clients: options.registerClients, keys: options.keys, keyRotateMs: options.keyRotateMs }, runId);
    const set = runSetWorkload(ctx, rng.fork(2), options.setClients, runId);
    const lockRun = runLockWorkload(ctx, rng.fork(3), options.lockClients);
    const leaseRun = runLeaseWorkload(ctx, rng.fork(4), options.leaseClients, runId);
    const watchRun = startWatchWorkload(ctx, rng.fork(5), options.watchers, runId);
    watched = watchRun.result;
    const endMs = options.timeSec * 1000;
    const progress = setInterval(() => say(`${(now() / 1000).toFixed(0)}s: ${nemesis.total} faults so far`), 10_000);
    try {
      await nemesis.run(endMs, () => stopped);
    } finally {
      await nemesis.healAll();
      clearInterval(progress);
    }
    // Quiet time with every fault healed: the workload keeps going, so recovery is visible.
    await sleep(Math.max(0, endMs - now()));
    stopped = true;
    ({ history, repeats } = await register);
    const setResult = await set;
    adds = setResult.adds;
    locks = await lockRun;
    leases = await leaseRun;
    // The watchers keep reading until they have the last acknowledged write (or 20 s pass).
    await watchRun.writing;
    const lastRevision = Math.max(0, ...[...watched.acked.values()].map((a) => a.revision));
    await watchRun.drain(lastRevision, 20_000);
    await watchRun.done;

    try {
      await cluster.waitHealthy(30_000);
      recovery = 'ok';
    } catch (err) {
      recovery = (err as Error).message;
      reasons.push(`no recovery after the final heal: ${recovery}`);
    }
    // The set is read back even when recovery failed: lost writes say more than "no leader".
    let hasFinalRead = false;
    try {
      present = await finalRead(cluster.urls, setResult.prefixes, cluster.security?.client ?? null);
      hasFinalRead = true;
    } catch (err) {
      if (recovery === 'ok') {
        recovery = (err as Error).message;
        reasons.push(`no recovery after the final heal: ${recovery}`);
      }
    }
    isSetRead = hasFinalRead;
    if (recovery === 'ok' && leases.probes.length > 0) {
      // Every lease was left to lapse at the end: once a leader has had a TTL (and a margin for
      // its expiry tick and the revoke's commit) since taking over, they are all gone.
      await sleep(Math.max(...leases.probes.map((p) => p.ttlMs)) + 3000);
      try {
        reasons.push(...(await checkLeasesLapsed(cluster.urls[0]!, leases, cluster.security?.client ?? null)));
      } catch (err) {
        reasons.push(`the leases' keys could not be read back: ${(err as Error).message}`);
      }
    }
    if (recovery === 'ok') {
      const views = await Promise.all(
        cluster.members.map(async (n) => {
          try {
            const seen = await readSet(n.url, setResult.prefixes, 'stale', cluster.security?.client ?? null);
            return sameSet(seen, present) ? null : `${n.id} holds ${seen.size} elements, the linearizable read ${present.size}`;
          } catch (err) {
            return `${n.id}: ${(err as Error).message}`;
          }
        }),
      );
      const diverged = views.filter((v): v is string => v !== null);
      convergence = diverged.length === 0 ? 'ok' : diverged.join('; ');
      if (diverged.length > 0) reasons.push(`replicas diverge after recovery: ${convergence}`);
    }
    // How many snapshots the members took and installed since each one's last start (a small
    // --snapshot-entries makes them frequent): what shows the snapshot paths ran under faults.
    for (const n of cluster.members) {
      const m = await n.metrics().catch(() => null);
      snapshots.taken += m?.get('raftkv_snapshots_taken_total') ?? 0;
      snapshots.installed += m?.get('raftkv_snapshots_installed_total') ?? 0;
    }
  } finally {
    await nemesis.healAll().catch(() => undefined);
    await cluster.destroy();
  }
  const unexpectedExits = cluster.allNodes.flatMap((n) => n.unexpectedExits);
  if (unexpectedExits.length > 0) reasons.push(`nodes crashed: ${unexpectedExits.join('; ')}`);
  // A member that refused a leader for contradicting its committed entries saw Leader
  // Completeness broken, even if the refusal kept every write (no adversary runs here).
  const alarms = leaderCompletenessAlarms(cluster.allNodes.map((n) => ({ id: n.id, log: existsSync(n.logFile) ? readFileSync(n.logFile, 'utf8') : '' })));
  if (alarms.length > 0) reasons.push(`Leader Completeness alarm (§5.4.3): ${alarms.slice(0, 3).join('; ')}${alarms.length > 3 ? `; and ${alarms.length - 3} more` : ''}`);
  // The harness holds an admin token: no node may refuse it, whatever the faults.
  if (authRefusals.count > 0) reasons.push(`${authRefusals.count} requests with the admin token refused (e.g. ${authRefusals.sample.slice(0, 3).join('; ')})`);

  // The set: every acknowledged add present, nothing present that was never attempted or refused.
  const lostRecords = isSetRead ? [...adds].filter(([e, a]) => a.outcome === 'ok' && !present.has(e)) : [];
  const lost = lostRecords.map(([e]) => e);
  const phantom = isSetRead ? [...present].filter((e) => adds.get(e) === undefined || adds.get(e)?.outcome === 'failed') : [];
  if (lost.length > 0) reasons.push(`${lost.length} acknowledged adds lost (e.g. ${lost.slice(0, 3).join(', ')})`);
  if (phantom.length > 0) reasons.push(`${phantom.length} phantom elements (e.g. ${phantom.slice(0, 3).join(', ')})`);
  // Idempotency (API.md): a write sent again with its key answers its first answer.
  if (repeats.mismatches.length > 0) {
    reasons.push(`${repeats.mismatches.length} of ${repeats.answered} repeated writes answered differently from the first time (Idempotency-Key; e.g. ${repeats.mismatches.slice(0, 2).join('; ')})`);
  }
  // The coordination workloads: mutual exclusion and fencing; leases kept alive never expire.
  reasons.push(...checkLocks(locks), ...checkLeases(leases), ...checkWatches(watched));

  // The register history.
  writeFileSync(files.history, history.map((op) => JSON.stringify(op)).join('\n') + '\n');
  // The coordination workloads' records, for whoever reads a failure.
  writeFileSync(
    join(out, 'coordination.json'),
    `${JSON.stringify({ locks: { ...locks, refusals: Object.fromEntries(locks.refusals) }, leases, watch: { ...watched, acked: Object.fromEntries(watched.acked), attempted: watched.attempted.size } })}\n`,
  );
  const checked: HistoryOp<KvInput, KvOutput>[] = history
    .filter((op) => op.failed !== true)
    .map((op) => ({ process: op.process, call: op.call, ret: op.ret, input: op.input, output: op.output, ...(op.unknown ? { unknown: true } : {}) }));
  const result = checkHistory(kvModel, checked, { timeLimitMs: options.checkTimeMs });
  const checkLine = formatCheckResult(result);
  let violationFiles: { violation?: string; timeline?: string } = {};
  if (result.outcome === 'violation') {
    const violation = join(out, 'violation.txt');
    const timeline = join(out, 'violation.html');
    writeFileSync(violation, `${renderViolationText(result.violation)}\n`);
    writeFileSync(timeline, renderTimelineHtml(result.violation, { title: `raftkv fault run seed ${options.seed}: key ${result.key}` }));
    violationFiles = { violation, timeline };
    reasons.push(`not linearizable: ${checkLine.split('\n')[0]}; stuck op at ${Math.round(result.violation.window.find((w) => w.role === 'stuck')?.op.call ?? 0)} ms (see ${violation})`);
  }
  // How fast the run could have known: the earliest op that a check blames.
  const anomalies = lostRecords.map(([, a]) => a.ret);
  if (result.outcome === 'violation') {
    const stuck = result.violation.window.find((w) => w.role === 'stuck');
    if (stuck !== undefined) anomalies.push(stuck.op.ret ?? stuck.op.call);
  }
  const firstAnomalyMs = anomalies.length > 0 ? Math.round(Math.min(...anomalies)) : null;
  const verdict: Verdict = reasons.length > 0 ? 'invalid' : result.outcome === 'unknown' ? 'inconclusive' : 'valid';
  if (result.outcome === 'unknown') reasons.push(`linearizability check inconclusive: ${checkLine.split('\n')[0]}`);

  const summary: FaultRunSummary = {
    verdict,
    reasons,
    seed: options.seed,
    mixes: options.mixes,
    network,
    secure: options.secure,
    snapshotEntries: options.snapshotEntries,
    snapshots,
    nodes: options.nodes,
    timeSec: options.timeSec,
    elapsedMs: Date.now() - started,
    ops: opCounts(history, adds.size),
    faults: { total: nemesis.total, byKind: Object.fromEntries(nemesis.counts) },
    repeats: { sent: repeats.sent, answered: repeats.answered, mismatched: repeats.mismatches.length },
    set: {
      attempted: adds.size,
      acked: [...adds.values()].filter((a) => a.outcome === 'ok').length,
      unknown: [...adds.values()].filter((a) => a.outcome === 'unknown').length,
      failed: [...adds.values()].filter((a) => a.outcome === 'failed').length,
      present: present.size,
      lost: lost.length,
      phantom: phantom.length,
      lostSample: lost.slice(0, 10),
      phantomSample: phantom.slice(0, 10),
    },
    check: { outcome: result.outcome, line: checkLine, elapsedMs: Math.round(result.stats.elapsedMs) },
    locks: { attempts: locks.attempts, grants: locks.grants.length, fenced: locks.fenced.length, refusals: Object.fromEntries(locks.refusals) },
    leases: { kept: leases.probes.length, reads: leases.probes.reduce((n, p) => n + p.reads.length, 0) },
    watch: { acked: watched.acked.size, watchers: watched.watchers.length, events: watched.watchers.reduce((n, w) => n + w.events.length, 0), reconnects: watched.watchers.reduce((n, w) => n + w.reconnects, 0) },
    firstAnomalyMs,
    recovery,
    convergence,
    unexpectedExits,
    authRefusals,
    files: { ...files, ...violationFiles },
  };
  writeFileSync(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

function opCounts(history: readonly RecordedOp[], setAdds: number): FaultRunSummary['ops'] {
  let ok = 0;
  let unknown = 0;
  let failed = 0;
  let reads = 0;
  let writes = 0;
  let cas = 0;
  let casOk = 0;
  for (const op of history) {
    if (op.failed) failed++;
    else if (op.unknown) unknown++;
    else ok++;
    if (op.input.type === 'get') reads++;
    else if (op.input.type === 'cas') {
      cas++;
      if (op.output?.type === 'cas' && op.output.ok) casOk++;
    } else writes++;
  }
  return { total: history.length + setAdds, ok, unknown, failed, reads, writes, cas, casOk };
}

/** A linearizable read of the whole set, tried on each member in turn for up to 20 s. */
async function finalRead(urls: readonly string[], prefixes: Set<string>, security: ClientSecurity | null): Promise<Set<string>> {
  const deadline = Date.now() + 20_000;
  let last: unknown;
  for (let i = 0; Date.now() < deadline; i++) {
    try {
      return await readSet(urls[i % urls.length] as string, prefixes, 'linearizable', security);
    } catch (err) {
      last = err;
      await sleep(200);
    }
  }
  throw new Error(`the final read of the set failed: ${(last as Error)?.message}`);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** The node log lines that raise the Leader Completeness alarm (RaftNode), each as `id: line`. */
export function leaderCompletenessAlarms(nodes: readonly { readonly id: string; readonly log: string }[]): string[] {
  const found: string[] = [];
  for (const { id, log } of nodes) {
    for (const line of log.split('\n')) if (line.includes(LEADER_COMPLETENESS_ALARM)) found.push(`${id}: ${line.trim().slice(0, 400)}`);
  }
  return found;
}

/** The verdict line: what a person and a CI log read first. */
export function verdictLine(s: FaultRunSummary): string {
  const kinds = Object.entries(s.faults.byKind).map(([k, n]) => `${k}=${n}`).join(' ');
  return (
    `faults: ${s.verdict.toUpperCase()} seed=${s.seed} mix=${s.mixes.join('+')} network=${s.network}${s.secure ? ' security=tls+auth' : ''} nodes=${s.nodes} time=${s.timeSec}s ` +
    `ops=${s.ops.total} (register ${s.ops.total - s.set.attempted}: ok ${s.ops.ok}, unknown ${s.ops.unknown}, refused ${s.ops.failed}; set adds ${s.set.attempted}: acked ${s.set.acked}; repeats ${s.repeats.answered - s.repeats.mismatched}/${s.repeats.answered} same) ` +
    `locks=${s.locks.grants}/${s.locks.attempts} leases=${s.leases.kept} watch=${s.watch.events}/${s.watch.acked * s.watch.watchers} faults=${s.faults.total}${kinds ? ` (${kinds})` : ''} lost=${s.set.lost} phantom=${s.set.phantom} snapshots=${s.snapshots.taken}+${s.snapshots.installed} check=${s.check.outcome} recovery=${s.recovery === 'ok' ? 'ok' : 'FAILED'}`
  );
}
