// The benchmark's printed output: a line per measured level and routing as it finishes, a table
// of both systems side by side, the forwarding cost of each, and one machine-greppable line per
// level and routing.
import type { LoadResult } from './load.js';
import type { Routing } from './workload.js';

export const SYSTEMS = ['raftkv', 'etcd'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** Every result of one run, by system, level (concurrency) and routing. */
export class ResultSet {
  private readonly results = new Map<string, LoadResult>();

  add(system: SystemName, routing: Routing, r: LoadResult): void {
    this.results.set(cellKey(system, r.concurrency, routing), r);
  }

  get(system: SystemName, level: number, routing: Routing): LoadResult | undefined {
    return this.results.get(cellKey(system, level, routing));
  }

  has(system: SystemName): boolean {
    return [...this.results.keys()].some((k) => k.startsWith(`${system}/`));
  }

  all(): LoadResult[] {
    return [...this.results.values()];
  }
}

const cellKey = (system: SystemName, level: number, routing: Routing): string => `${system}/${level}/${routing}`;

/** raftkv ops/s ÷ etcd ops/s; NaN when either is missing or etcd did nothing. */
export function ratio(raftkv: LoadResult | undefined, etcd: LoadResult | undefined): number {
  if (raftkv === undefined || etcd === undefined || etcd.opsPerSecond === 0) return NaN;
  return raftkv.opsPerSecond / etcd.opsPerSecond;
}

/** 1 − spread ops/s ÷ leader ops/s: the share of throughput lost when followers take clients. */
export function forwardingCost(spread: LoadResult | undefined, leader: LoadResult | undefined): number {
  if (spread === undefined || leader === undefined || leader.opsPerSecond === 0) return NaN;
  return 1 - spread.opsPerSecond / leader.opsPerSecond;
}

export const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function formatLevel(system: SystemName, routing: Routing, r: LoadResult): string {
  const errors = r.errors > 0 ? `  errors=${r.errors} (first: ${r.firstError ?? '?'})` : '';
  const misrouted = r.misrouted > 0 ? `  MISROUTED=${r.misrouted} (answered by another member than aimed at)` : '';
  return `${system.padEnd(6)} ${routing.padEnd(6)} c=${String(r.concurrency).padEnd(4)} ${fmt(r.opsPerSecond, 0).padStart(7)} ops/s`
    + `  p50 ${fmt(r.p50Ms, 2).padStart(7)}  p99 ${fmt(r.p99Ms, 2).padStart(7)}  max ${fmt(r.maxMs, 1).padStart(7)} ms`
    + `  (${r.ops} ops in ${r.seconds} s; client CPU ${fmt(r.clientCpuUsPerOp, 0)} µs/op)${errors}${misrouted}`;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`, ...rows.map(line)].join('\n');
}

function systemCells(r: LoadResult | undefined): string[] {
  if (r === undefined) return ['-', '-', '-', '-', '-'];
  return [fmt(r.opsPerSecond, 0), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.maxMs, 1), String(r.errors)];
}

/** Both systems side by side, a row per level and routing; etcd's columns only if it ran. */
export function formatTable(levels: readonly number[], routings: readonly Routing[], results: ResultSet): string {
  const withEtcd = results.has('etcd');
  const cols = (s: string): string[] => [`${s} ops/s`, 'p50 ms', 'p99 ms', 'max ms', 'errors'];
  const header = ['level', 'routing', ...cols('raftkv'), ...(withEtcd ? [...cols('etcd'), 'ratio'] : [])];
  const rows = levels.flatMap((level) =>
    routings.map((routing) => {
      const a = results.get('raftkv', level, routing);
      const b = results.get('etcd', level, routing);
      return [String(level), routing, ...systemCells(a), ...(withEtcd ? [...systemCells(b), fmt(ratio(a, b), 2)] : [])];
    }),
  );
  return markdownTable(header, rows);
}

/** Per level and system: spread and leader ops/s, and the forwarding cost. Empty without both routings. */
export function formatForwardingCost(levels: readonly number[], routings: readonly Routing[], results: ResultSet): string {
  if (!routings.includes('spread') || !routings.includes('leader')) return '';
  const systems = SYSTEMS.filter((s) => results.has(s));
  const header = ['level', ...systems.flatMap((s) => [`${s} spread`, `${s} leader`, `${s} forwarding cost`])];
  const rows = levels.map((level) => [
    String(level),
    ...systems.flatMap((s) => {
      const spread = results.get(s, level, 'spread');
      const leader = results.get(s, level, 'leader');
      return [fmt(spread?.opsPerSecond ?? NaN, 0), fmt(leader?.opsPerSecond ?? NaN, 0), fmt(forwardingCost(spread, leader), 2)];
    }),
  ]);
  return markdownTable(header, rows);
}

/**
 * `level=16 routing=spread raftkv=X etcd=Y ratio=Z raftkv_p99=.. etcd_p99=..` per level and
 * routing (ops/s and ms), then `level=16 forwarding_cost_raftkv=.. forwarding_cost_etcd=..`
 * per level when both routings ran. A system that did not run reads `-`.
 */
export function formatFinalLines(levels: readonly number[], routings: readonly Routing[], results: ResultSet): string[] {
  const lines: string[] = [];
  for (const level of levels) {
    for (const routing of routings) {
      const a = results.get('raftkv', level, routing);
      const b = results.get('etcd', level, routing);
      lines.push(
        `level=${level} routing=${routing} raftkv=${fmt(a?.opsPerSecond ?? NaN, 0)} etcd=${fmt(b?.opsPerSecond ?? NaN, 0)} ratio=${fmt(ratio(a, b), 2)}`
          + ` raftkv_p99=${fmt(a?.p99Ms ?? NaN, 2)} etcd_p99=${fmt(b?.p99Ms ?? NaN, 2)} raftkv_errors=${a?.errors ?? '-'} etcd_errors=${b?.errors ?? '-'}`,
      );
    }
  }
  if (routings.includes('spread') && routings.includes('leader')) {
    for (const level of levels) {
      const cost = (s: SystemName): string => fmt(forwardingCost(results.get(s, level, 'spread'), results.get(s, level, 'leader')), 2);
      lines.push(`level=${level} forwarding_cost_raftkv=${cost('raftkv')} forwarding_cost_etcd=${cost('etcd')}`);
    }
  }
  return lines;
}
