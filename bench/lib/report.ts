// The benchmark's printed output: a line per measured level as it finishes, a compact table of
// both systems side by side, and one machine-greppable line per level.
import type { LoadResult } from './load.js';

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function formatLevel(system: string, r: LoadResult): string {
  const errors = r.errors > 0 ? `  errors=${r.errors} (first: ${r.firstError ?? '?'})` : '';
  return `${system.padEnd(6)} c=${String(r.concurrency).padEnd(4)} ${fmt(r.opsPerSecond, 0).padStart(7)} ops/s  p50 ${fmt(r.p50Ms, 2).padStart(7)} ms  p99 ${fmt(r.p99Ms, 2).padStart(7)} ms  (${r.ops} ops in ${r.seconds} s)${errors}`;
}

export function formatTable(levels: readonly number[], raftkv: ReadonlyMap<number, LoadResult>, etcd: ReadonlyMap<number, LoadResult> | null): string {
  const header = etcd === null
    ? ['level', 'raftkv ops/s', 'p50 ms', 'p99 ms', 'errors']
    : ['level', 'raftkv ops/s', 'etcd ops/s', 'ratio', 'p50 ms raftkv/etcd', 'p99 ms raftkv/etcd', 'errors raftkv/etcd'];
  const rows = levels.map((c) => {
    const a = raftkv.get(c);
    const b = etcd?.get(c);
    if (etcd === null) return [String(c), fmt(a?.opsPerSecond ?? NaN, 0), fmt(a?.p50Ms ?? NaN, 2), fmt(a?.p99Ms ?? NaN, 2), String(a?.errors ?? '-')];
    return [
      String(c),
      fmt(a?.opsPerSecond ?? NaN, 0),
      fmt(b?.opsPerSecond ?? NaN, 0),
      fmt(ratio(a, b), 2),
      `${fmt(a?.p50Ms ?? NaN, 2)} / ${fmt(b?.p50Ms ?? NaN, 2)}`,
      `${fmt(a?.p99Ms ?? NaN, 2)} / ${fmt(b?.p99Ms ?? NaN, 2)}`,
      `${a?.errors ?? '-'} / ${b?.errors ?? '-'}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function formatFinalLine(c: number, a: LoadResult | undefined, b: LoadResult | undefined): string {
  const etcdPart = b === undefined ? 'etcd=skipped ratio=-' : `etcd=${fmt(b.opsPerSecond, 0)} ops/s ratio=${fmt(ratio(a, b), 2)}`;
  return `level=${c} raftkv=${fmt(a?.opsPerSecond ?? NaN, 0)} ops/s ${etcdPart}`;
}

function ratio(a: LoadResult | undefined, b: LoadResult | undefined): number {
  if (a === undefined || b === undefined || b.opsPerSecond === 0) return NaN;
  return a.opsPerSecond / b.opsPerSecond;
}
