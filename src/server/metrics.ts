// A small Prometheus registry: counters, gauges read at scrape time, and histograms, rendered in
// the text exposition format (version 0.0.4). Enough for /metrics without a dependency: measured
// against prom-client 15 (docs/metrics.md), it renders a node's page in less time and costs the
// hot path nothing (values are read at scrape time), and the package keeps no runtime dependency.
// Types are a contract: a value that only grows is a counter named *_total; a gauge goes both
// ways. test/server/metrics-format.test.ts holds every page to the format.

type Labels = Readonly<Record<string, string>>;

const NEEDS_ESCAPE = /[\\"\n]/;

function escapeLabelValue(v: string): string {
  return NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** The series key, `{a="x",b="y"}`; built per increment, so a plain loop (this is on every request). */
function labelText(labels: Labels): string {
  let out = '';
  for (const k in labels) out += `${out === '' ? '{' : ','}${k}="${escapeLabelValue(labels[k]!)}"`;
  return out === '' ? '' : `${out}}`;
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

type Read = () => number | ReadonlyArray<readonly [Labels, number]>;

/** A metric whose values are read at scrape time from where they are kept. */
abstract class ScrapedMetric implements Metric {
  protected abstract readonly type: 'gauge' | 'counter';
  constructor(readonly name: string, readonly help: string, private readonly read: Read) {}
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    const v = this.read();
    if (typeof v === 'number') lines.push(`${this.name} ${v}`);
    else for (const [labels, value] of v) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join('\n');
  }
}

export class Gauge extends ScrapedMetric {
  protected readonly type = 'gauge';
}

/** A counter kept elsewhere (by the process, the transport), read at scrape time. */
export class ReadCounter extends ScrapedMetric {
  protected readonly type = 'counter';
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const s = this.touch(labels);
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  /** Makes the series exist (all zeros) before its first observation, so rates start from 0. */
  touch(labels: Labels = {}): { counts: number[]; sum: number; count: number } {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const inner = key === '' ? '' : key.slice(1, -1) + ',';
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{${inner}le="${b}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${inner}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${key} ${s.sum}`);
      lines.push(`${this.name}_count${key} ${s.count}`);
    }
    return lines.join('\n');
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  private readonly collectors: (() => void)[] = [];
  /** Runs before each render: the place to move buffered samples into histograms. */
  onScrape(collect: () => void): void {
    this.collectors.push(collect);
  }
  register<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  render(): string {
    for (const c of this.collectors) c();
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

/** Seconds, from 0.5 ms to 10 s: fsyncs and requests both land in this range. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
