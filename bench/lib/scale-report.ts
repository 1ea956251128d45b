// The scale benchmark's printed output (bench/scale.ts): a line per step as the run goes, a table
// of both systems side by side at the end, and machine-readable lines
// `metric=NAME system=S [member=M] [phase=P] [...] value=X` (MB, ms, ops/s), every one printed
// when measured and all again at the end.
import type { FillResult, FillStep } from './fill.js';
import type { LoadResult } from './load.js';
import { fmt, markdownTable, type SystemName } from './report.js';
import type { RestartResult } from './restart-probe.js';
import type { MemberReading } from './scale-systems.js';
import type { StartupPhase } from './raftkv-startup.js';
import { maxOf, median } from './stats.js';

export const READING_PHASES = ['after-load', 'after-settle', 'after-stability'] as const;
export type ReadingPhase = (typeof READING_PHASES)[number];

export interface Stability {
  readonly result: LoadResult;
  readonly windowMs: number;
  /** ops/s of each window, over its real length (the last may be shorter). */
  readonly rates: readonly number[];
  /** How many windows each end of the comparison spans (a minute's worth, at most half the run). */
  readonly comparedWindows: number;
  readonly firstRate: number;
  readonly lastRate: number;
  /** lastRate ÷ firstRate: the issue's goal is ≥ 0.9. */
  readonly ratio: number;
  /**
   * Each member's RSS sampled once a second through the run. One reading at the end lands in or
   * out of a snapshot's encoding by chance (raftkv holds its base and the snapshot being written,
   * two snapshots' worth, for seconds of each cycle), so the median and the highest sample say
   * more than it does.
   */
  readonly rss: readonly MemberSamples[];
}

/** One member's samples of a number, in bytes. */
export interface MemberSamples {
  readonly member: string;
  readonly samples: readonly number[];
}

/** One system's run; a phase that did not run (or failed) is null. */
export interface SystemReport {
  readonly system: SystemName;
  readonly fill: FillResult | null;
  readonly readings: ReadonlyMap<ReadingPhase, readonly MemberReading[]>;
  readonly restart: RestartResult | null;
  readonly stability: Stability | null;
  /** How far the Raft term rose during the load and during the stability run: elections. */
  readonly termRises: ReadonlyMap<'load' | 'stability', number>;
  /** Why the run of this system stopped early, or null. */
  readonly failure: string | null;
}

const MIB = 1024 * 1024;
const mb = (bytes: number): number => bytes / MIB;

/** The first and last minute (at most half the run each) of a windowed load. */
export function summarizeStability(result: LoadResult, windowMs: number, durationMs: number, rss: readonly MemberSamples[] = []): Stability {
  const counts = result.windowOps ?? [];
  const rates = counts.map((n, i) => n / ((Math.min((i + 1) * windowMs, durationMs) - i * windowMs) / 1000));
  const comparedWindows = Math.max(1, Math.min(Math.floor(60_000 / windowMs), Math.floor(counts.length / 2)));
  const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  const firstRate = mean(rates.slice(0, comparedWindows));
  const lastRate = mean(rates.slice(-comparedWindows));
  return { result, windowMs, rates, comparedWindows, firstRate, lastRate, ratio: firstRate > 0 ? lastRate / firstRate : NaN, rss };
}

/** Machine-readable lines, kept in order for the end of the run. */
export class MetricLines {
  readonly lines: string[] = [];

  /** Adds and returns `metric=NAME system=S k=v … value=X`. */
  add(metric: string, system: SystemName, labels: Readonly<Record<string, string | number>>, value: number, digits = 1): string {
    const line = [`metric=${metric}`, `system=${system}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`), `value=${fmt(value, digits)}`].join(' ');
    this.lines.push(line);
    return line;
  }
}

export function formatFillStep(system: SystemName, step: FillStep, count: number): string {
  return `${system.padEnd(6)} load ${String(Math.round((100 * step.done) / count)).padStart(3)} %  ${String(step.done).padStart(9)} keys  ${fmt(step.opsPerSecond, 0).padStart(6)} writes/s in this step  (${fmt(step.elapsedSeconds, 1)} s so far)`;
}

/** Every member's RSS (now, peak, and its mapped-file part), heap, ArrayBuffers and data dir, in MB; one metric line per number. */
export function formatReadings(system: SystemName, phase: ReadingPhase, readings: readonly MemberReading[], metrics: MetricLines): string {
  const lines = readings.map((r) => {
    const labels = { member: r.member, phase };
    metrics.add('rss_mb', system, labels, mb(r.rssBytes));
    metrics.add('peak_rss_mb', system, labels, mb(r.peakRssBytes));
    metrics.add('file_rss_mb', system, labels, mb(r.fileRssBytes));
    metrics.add('heap_used_mb', system, labels, mb(r.heapUsedBytes));
    if (system === 'raftkv') metrics.add('array_buffers_mb', system, labels, mb(r.arrayBufferBytes));
    metrics.add('data_dir_mb', system, labels, mb(r.dataDirBytes));
    const buffers = system === 'raftkv' ? `  array buffers ${fmt(mb(r.arrayBufferBytes), 0).padStart(5)}` : '';
    return `  ${r.member}: RSS ${fmt(mb(r.rssBytes), 0).padStart(5)} MB (peak ${fmt(mb(r.peakRssBytes), 0)}, mapped files ${fmt(mb(r.fileRssBytes), 0)})  heap in use ${fmt(mb(r.heapUsedBytes), 0).padStart(5)}${buffers}  data dir ${fmt(mb(r.dataDirBytes), 0).padStart(5)} MB`;
  });
  return [`${system} ${phase}:`, ...lines].join('\n');
}

export function formatRestart(system: SystemName, r: RestartResult, metrics: MetricLines): string {
  metrics.add('restart_first_ack_ms', system, { member: r.firstAckMember ?? '-' }, r.firstAckMs, 0);
  // A member answers a write once it has replayed its own log, leader or not (it forwards the
  // write): the first acknowledged write follows the earliest replay's end, not the leader's.
  const earliest = r.phases.filter((p) => p.phase === 'replayed').reduce<StartupPhase | null>((a, p) => (a === null || p.ms < a.ms ? p : a), null);
  if (earliest !== null) metrics.add('restart_earliest_replayed_ms', system, { member: earliest.member }, earliest.ms, 0);
  const out = [
    `${system} restart after kill -9 of every member (kill took ${fmt(r.killMs, 0)} ms): first acknowledged write ${fmt(r.firstAckMs, 0)} ms after the spawn, through ${r.firstAckMember ?? 'no member'}`
      + ` (${r.failedAttempts} PUTs failed before it${r.lastError !== null ? `; last: ${r.lastError}` : ''})`
      + (earliest !== null ? `; the earliest replay ended at ${fmt(earliest.ms, 0)} ms (${earliest.member})` : ''),
  ];
  for (const m of r.members) {
    metrics.add('restart_up_ms', system, { member: m.member }, m.upMs, 0);
    metrics.add('restart_ready_ms', system, { member: m.member }, m.readyMs, 0);
    const phases = r.phases.filter((p) => p.member === m.member);
    for (const p of phases) metrics.add('restart_phase_ms', system, { member: m.member, phase: p.phase }, p.ms, 0);
    for (const p of phases) if (p.cpuMs !== undefined) metrics.add('restart_phase_cpu_ms', system, { member: m.member, phase: p.phase }, p.cpuMs, 0);
    const logged = phases.length === 0 ? '' : `; its log: ${phases.map((p) => `${p.phase} ${fmt(p.ms, 0)}${phaseNote(p)}`).join(', ')} ms`;
    out.push(`  ${m.member}: serving ${fmt(m.upMs, 0)} ms, ready ${fmt(m.readyMs, 0)} ms${logged}`);
  }
  return out.join('\n');
}

/** A phase's detail and the CPU its process had used by then, in parentheses: ` (tail 93,650; cpu 410)`. */
function phaseNote(p: StartupPhase): string {
  const parts = [...(p.detail !== undefined ? [p.detail] : []), ...(p.cpuMs !== undefined ? [`cpu ${fmt(p.cpuMs, 0)}`] : [])];
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
}

export function formatStability(system: SystemName, s: Stability, metrics: MetricLines): string {
  s.rates.forEach((rate, i) => metrics.add('stability_ops_per_second', system, { window: i + 1 }, rate, 0));
  metrics.add('stability_first_ops_per_second', system, { windows: s.comparedWindows }, s.firstRate, 0);
  metrics.add('stability_last_ops_per_second', system, { windows: s.comparedWindows }, s.lastRate, 0);
  metrics.add('stability_ratio', system, {}, s.ratio, 3);
  metrics.add('stability_errors', system, {}, s.result.errors, 0);
  for (const m of s.rss) {
    metrics.add('stability_rss_median_mb', system, { member: m.member, samples: m.samples.length }, mb(median(m.samples)));
    metrics.add('stability_rss_max_mb', system, { member: m.member, samples: m.samples.length }, mb(maxOf(m.samples)));
  }
  const seconds = s.windowMs / 1000;
  const windows = s.rates.map((rate, i) => `${fmt(i * seconds, 0)}s ${fmt(rate, 0)}`).join(', ');
  const errors = s.result.errors > 0 ? `; errors ${s.result.errors} (first: ${s.result.firstError ?? '?'})` : '';
  return `${system} stability, ${s.result.concurrency} spread clients, ops/s per ${fmt(seconds, 0)} s window: ${windows}\n`
    + `${system} stability: first ${s.comparedWindows} window(s) ${fmt(s.firstRate, 0)} ops/s, last ${s.comparedWindows} ${fmt(s.lastRate, 0)} ops/s, last/first ${fmt(s.ratio, 3)}`
    + `; p50 ${fmt(s.result.p50Ms, 1)} p99 ${fmt(s.result.p99Ms, 1)} max ${fmt(s.result.maxMs, 0)} ms${errors}\n`
    + `${system} stability: RSS MB sampled each second, median / max: ${s.rss.map((m) => `${m.member} ${fmt(mb(median(m.samples)), 0)} / ${fmt(mb(maxOf(m.samples)), 0)}`).join(', ')}`;
}

/** Both systems side by side, a row per number; `a / b / c` is one number per member. */
export function formatScaleTable(reports: readonly SystemReport[]): string {
  const perMember = (r: SystemReport, phase: ReadingPhase, pick: (m: MemberReading) => number): string => {
    const readings = r.readings.get(phase);
    return readings === undefined ? '-' : readings.map((m) => fmt(mb(pick(m)), 0)).join(' / ');
  };
  const rows: [string, (r: SystemReport) => string][] = [
    ['load: seconds', (r) => fmt(r.fill?.seconds ?? NaN, 1)],
    ['load: writes/s overall', (r) => fmt(r.fill?.opsPerSecond ?? NaN, 0)],
    ['load: writes/s first / last 10 %', (r) => (r.fill === null ? '-' : `${fmt(r.fill.steps[0]?.opsPerSecond ?? NaN, 0)} / ${fmt(r.fill.steps.at(-1)?.opsPerSecond ?? NaN, 0)}`)],
    ['load: failed attempts', (r) => (r.fill === null ? '-' : String(r.fill.errors))],
    ['load: Raft term rises', (r) => fmt(r.termRises.get('load') ?? NaN, 0)],
    ...READING_PHASES.flatMap((phase): [string, (r: SystemReport) => string][] => [
      [`RSS MB ${phase}`, (r) => perMember(r, phase, (m) => m.rssBytes)],
      [`heap in use MB ${phase}`, (r) => perMember(r, phase, (m) => m.heapUsedBytes)],
    ]),
    // The last reading's peak: since the restart when the stability phase ran, since the start otherwise.
    ['peak RSS MB (last reading)', (r) => perMember(r, READING_PHASES.filter((p) => r.readings.has(p)).at(-1) ?? 'after-load', (m) => m.peakRssBytes)],
    ['data dir MB after-settle', (r) => perMember(r, 'after-settle', (m) => m.dataDirBytes)],
    ['restart: first ack ms', (r) => fmt(r.restart?.firstAckMs ?? NaN, 0)],
    ['restart: serving ms', (r) => r.restart?.members.map((m) => fmt(m.upMs, 0)).join(' / ') ?? '-'],
    ['restart: ready ms', (r) => r.restart?.members.map((m) => fmt(m.readyMs, 0)).join(' / ') ?? '-'],
    ['stability: first / last ops/s', (r) => (r.stability === null ? '-' : `${fmt(r.stability.firstRate, 0)} / ${fmt(r.stability.lastRate, 0)}`)],
    ['stability: last ÷ first', (r) => fmt(r.stability?.ratio ?? NaN, 3)],
    ['RSS MB during stability, median', (r) => r.stability?.rss.map((m) => fmt(mb(median(m.samples)), 0)).join(' / ') ?? '-'],
    ['RSS MB during stability, max', (r) => r.stability?.rss.map((m) => fmt(mb(maxOf(m.samples)), 0)).join(' / ') ?? '-'],
    ['stability: errors', (r) => (r.stability === null ? '-' : String(r.stability.result.errors))],
    ['stability: Raft term rises', (r) => fmt(r.termRises.get('stability') ?? NaN, 0)],
  ];
  return markdownTable(['', ...reports.map((r) => r.system)], rows.map(([name, cell]) => [name, ...reports.map(cell)]));
}
