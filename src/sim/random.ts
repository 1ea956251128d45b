// The simulator's only source of randomness: xoshiro128** (Blackman & Vigna), seeded through
// splitmix32 so that nearby seeds give unrelated streams. Every consumer (each node's core, the
// network, the fault schedule, the client) draws from its own stream derived from the run's seed,
// so adding a draw in one place never shifts the choices made in another.

/** Mixes a 32-bit value (splitmix32 finalizer): small input changes flip about half the bits. */
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream for `seed`; `stream` names an independent sub-stream (node, network, ...). */
  constructor(seed: number, stream = 0) {
    let s = mix32((seed >>> 0) ^ mix32(stream + 0x632be5ab) ^ Math.floor(seed / 0x100000000));
    this.a = s = mix32(s);
    this.b = s = mix32(s);
    this.c = s = mix32(s);
    this.d = mix32(s) | 1; // the all-zero state is the one state xoshiro cannot leave
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A float in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** An exponentially distributed float with mean `mean` (gaps between faults). */
  exponential(mean: number): number {
    return -portableLn(1 - this.next()) * mean;
  }

  /** A function suitable for the core's `random` option. */
  asFunction(): () => number {
    return () => this.next();
  }
}

const LN2 = 0.6931471805599453;

/**
 * The natural logarithm of x in (0, 1], with nothing but IEEE additions, multiplications and
 * divisions, which every JavaScript engine rounds alike. Math.log is not so: engines differ in
 * the last bit for some inputs (Node 20 and a current Chromium disagree on about 7 % of them),
 * and one bit is enough for a seed to take another path. So a seed replays the same in Node and
 * in the browser's playground. x = m · 2^-k with m in [1, 2); ln m = 2 atanh((m-1)/(m+1)).
 */
export function portableLn(x: number): number {
  if (!(x > 0) || x > 1) throw new RangeError(`portableLn takes (0, 1], got ${x}`);
  let m = x;
  let k = 0;
  while (m < 1) {
    m *= 2;
    k++;
  }
  const t = (m - 1) / (m + 1);
  const t2 = t * t;
  let term = t;
  let sum = 0;
  // t ≤ 1/3, so t^(2n+1)/(2n+1) is below double precision well before n = 40.
  for (let n = 1; n < 80; n += 2) {
    sum += term / n;
    term *= t2;
    if (term < 1e-20) break;
  }
  return 2 * sum - k * LN2;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Names of the independent streams of one run. */
export const STREAMS = {
  network: 1,
  faults: 2,
  client: 3,
  disk: 4,
  profile: 5,
  clock: 6,
  membership: 7,
  /** Latencies of snapshot saves, installs and compactions (apart from syncs': those draw from `disk`). */
  snapshotDisk: 8,
  /** Node cores: NODE_BASE + slot * 1000 + incarnation. */
  nodeBase: 1000,
} as const;
