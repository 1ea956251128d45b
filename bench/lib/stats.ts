// Percentiles of recorded latencies (nearest-rank, on an already sorted array).

/** The nearest-rank median (the lower middle of an even count, a value that was seen); NaN for none. */
export function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 0.5);
}

/** The largest value; NaN for none. */
export function maxOf(xs: readonly number[]): number {
  let m = Number.NaN;
  for (const x of xs) if (!(x <= m)) m = x;
  return m;
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}
