// A strict reader of the Prometheus text exposition format (0.0.4) for the metrics tests: every
// line is HELP, TYPE or a sample; a family's HELP and TYPE come once, before its samples; sample
// names belong to a declared family (histograms: _bucket, _sum, _count); labels are well formed;
// no series appears twice; counters are named *_total; histogram buckets are cumulative and end
// with +Inf equal to _count. Any breach throws, naming the line.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Exposition {
  readonly types: ReadonlyMap<string, MetricType>;
  /** Series (name plus label text as written) to value. */
  readonly samples: ReadonlyMap<string, number>;
  /** Each sample's family. */
  readonly familyOf: ReadonlyMap<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
// Label values may hold any character, braces included, with \\, \" and \n escaped.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\["\\n])*"$/;

function value(text: string, line: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`not a number: ${line}`);
  return Number(text);
}

function labelsOf(text: string | undefined, line: string): string[] {
  if (text === undefined) return [];
  const inner = text.slice(1, -1);
  if (inner === '') return [];
  const parts = inner.match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? [];
  if (parts.join(',') !== inner) throw new Error(`malformed labels: ${line}`);
  for (const p of parts) if (!LABEL.test(p)) throw new Error(`malformed label ${p}: ${line}`);
  const names = parts.map((p) => p.slice(0, p.indexOf('=')));
  if (new Set(names).size !== names.length) throw new Error(`a label twice: ${line}`);
  return parts;
}

export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the page must end with a line break');
  const types = new Map<string, MetricType>();
  const helped = new Set<string>();
  const samples = new Map<string, number>();
  const familyOf = new Map<string, string>();
  const closed = new Set<string>();
  let current: string | null = null;
  const histograms = new Map<string, Map<string, { buckets: [number, number][]; count?: number }>>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') throw new Error('an empty line');
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (m === null) throw new Error(`a comment that is neither HELP nor TYPE: ${line}`);
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`);
      if (current !== null && current !== name) closed.add(current);
      if (closed.has(name)) throw new Error(`family ${name} declared again after others: ${line}`);
      current = name;
      if (kind === 'HELP') {
        if (helped.has(name)) throw new Error(`HELP twice for ${name}`);
        if (types.has(name)) throw new Error(`HELP after TYPE for ${name}`);
        helped.add(name);
      } else {
        if (types.has(name)) throw new Error(`TYPE twice for ${name}`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`unknown type: ${line}`);
        types.set(name, rest as MetricType);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    const family = current;
    if (family === null || !types.has(family)) throw new Error(`a sample before its TYPE: ${line}`);
    const type = types.get(family)!;
    const suffix = name.slice(family.length);
    const isOwn = name.startsWith(family) && (type === 'histogram' ? ['_bucket', '_sum', '_count'].includes(suffix) : suffix === '');
    if (!isOwn) throw new Error(`sample ${name} is not of the family ${family} (${type}): ${line}`);
    const labels = labelsOf(labelText, line);
    const key = `${name}${labelText ?? ''}`;
    if (samples.has(key)) throw new Error(`series twice: ${line}`);
    const v = value(valueText, line);
    if (type === 'counter' && !(v >= 0)) throw new Error(`a counter below 0: ${line}`);
    samples.set(key, v);
    familyOf.set(key, family);
    if (type === 'histogram') {
      const rest = labels.filter((l) => !l.startsWith('le=')).join(',');
      const series = histograms.get(family) ?? new Map<string, { buckets: [number, number][]; count?: number }>();
      histograms.set(family, series);
      const h = series.get(rest) ?? { buckets: [] };
      series.set(rest, h);
      if (suffix === '_bucket') {
        const le = labels.find((l) => l.startsWith('le='));
        if (le === undefined) throw new Error(`a bucket without le: ${line}`);
        h.buckets.push([value(le.slice(4, -1), line), v]);
      } else if (suffix === '_count') {
        h.count = v;
      }
    }
  }
  for (const [family, type] of types) {
    if (type === 'counter' && !family.endsWith('_total')) throw new Error(`counter ${family} is not named *_total`);
    if (!helped.has(family)) throw new Error(`no HELP for ${family}`);
  }
  for (const [family, series] of histograms) {
    for (const [labels, h] of series) {
      const les = h.buckets.map(([le]) => le);
      if (les.at(-1) !== Infinity) throw new Error(`${family}{${labels}} has no +Inf bucket`);
      for (let i = 1; i < h.buckets.length; i++) {
        if (!(les[i]! > les[i - 1]!)) throw new Error(`${family}{${labels}} buckets out of order`);
        if (h.buckets[i]![1] < h.buckets[i - 1]![1]) throw new Error(`${family}{${labels}} buckets not cumulative`);
      }
      if (h.count !== h.buckets.at(-1)![1]) throw new Error(`${family}{${labels}} _count ${h.count} is not the +Inf bucket ${h.buckets.at(-1)![1]}`);
    }
  }
  return { types, samples, familyOf };
}
