// The ordered index of keys behind prefix listings: a list of sorted chunks (each a plain array
// of at most 2 × CHUNK_LOAD keys) with the last key of every chunk beside it for a binary search.
// Insert and delete cost two binary searches and a memmove of one chunk; a listing seeks to the
// prefix and walks forward, never sorting. Order is UTF-8 byte order (= code point order), the
// order clients see, not JavaScript's UTF-16 order.

/** Target chunk size: large enough that seeks touch few chunks, small enough that splices are cheap. */
export const CHUNK_LOAD = 512;

/**
 * Compares in UTF-8 byte order. UTF-16 order differs from it only where both strings hold a unit
 * ≥ 0xD800 at the first difference: surrogates (astral code points) sort before U+E000–U+FFFF in
 * UTF-16 but after them in code point order, so those units are remapped before comparing.
 */
export function compareKeys(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x += x >= 0xe000 ? -0x800 : 0x2000;
        y += y >= 0xe000 ? -0x800 : 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

const HIGH_UNIT = /[\ud800-\uffff]/;

/**
 * Whether JavaScript's own string order agrees with compareKeys for every comparison against
 * `key`: the two orders differ only where both strings hold a unit ≥ 0xD800 at the first
 * difference, which cannot happen if `key` has none. The native comparison is a memcmp for
 * one-byte strings, several times faster than a charCodeAt loop.
 */
function nativeOrderHolds(key: string): boolean {
  return !HIGH_UNIT.test(key);
}

/** The first position in sorted `keys` whose key is ≥ key. */
function lowerBound(keys: readonly string[], key: string, native: boolean): number {
  let lo = 0;
  let hi = keys.length;
  if (native) {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
  } else {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
  }
  return lo;
}

/** add() places its keys once this many wait. */
const MAX_PENDING = 4096;

export class SortedKeys {
  private chunks: string[][] = [];
  /** maxes[i] is the last key of chunks[i]. */
  private maxes: string[] = [];
  private count = 0;
  /**
   * Keys add()ed and not yet placed: placed, sorted first, when the index is next read or a key
   * deleted (settle). A store applying writes reads its index far less often than it adds to it:
   * a replay of 94,000 new keys spent ~650 ms placing them one at a time, each placement ~18 string
   * comparisons whose strings are scattered over the heap (docs/benchmarks.md, "Nineteenth
   * session"); a sort of the batch and placement in key order touch memory in order.
   */
  private pending: string[] = [];

  /** `chunkLoad` is a parameter so tests can force splits and merges with few keys. */
  constructor(private readonly chunkLoad: number = CHUNK_LOAD) {}

  get size(): number {
    return this.count + this.pending.length;
  }

  /** Adds a key the index does not hold (the caller knows: it keeps the same keys in a Map). */
  add(key: string): void {
    // Bounded, so that whatever settles them is not held long (~10 ms for 4,096 into 200,000).
    if (this.pending.push(key) >= MAX_PENDING) this.settle();
  }

  /**
   * Places the pending keys, sorted first: a batch as large as an eighth of the index is merged
   * with it into new chunks (a replay's into an index that holds few), a smaller one placed a key
   * at a time, in key order.
   */
  private settle(): void {
    const keys = this.pending;
    if (keys.length === 0) return;
    this.pending = [];
    // JavaScript's own order is compareKeys's wherever one of the two keys holds no unit ≥
    // 0xD800, and the native sort compares without calling back into JavaScript.
    const native = keys.every(nativeOrderHolds);
    if (keys.length > 1) {
      if (native) keys.sort();
      else keys.sort(compareKeys);
    }
    if (keys.length * 8 < this.count) {
      for (let i = 0; i < keys.length; i++) this.place(keys[i]!);
      return;
    }
    const old = this.toArrayPlaced();
    const merged: string[] = new Array<string>(old.length + keys.length);
    let i = 0;
    let j = 0;
    let n = 0;
    // A key add()ed twice, or one the index held, would be the caller's bug: it is kept once.
    while (i < old.length || j < keys.length) {
      let key: string;
      if (j === keys.length) key = old[i++]!;
      else if (i === old.length) key = keys[j++]!;
      else {
        const a = old[i]!;
        const b = keys[j]!;
        if (native ? a < b : compareKeys(a, b) < 0) key = old[i++]!;
        else key = keys[j++]!;
      }
      if (n === 0 || merged[n - 1] !== key) merged[n++] = key;
    }
    merged.length = n;
    this.setSorted(merged);
  }

  /** Makes the index hold exactly `keys`, strictly increasing, in chunks of chunkLoad. */
  private setSorted(keys: readonly string[]): void {
    this.chunks = [];
    this.maxes = [];
    for (let i = 0; i < keys.length; i += this.chunkLoad) {
      const chunk = keys.slice(i, i + this.chunkLoad);
      this.chunks.push(chunk);
      this.maxes.push(chunk[chunk.length - 1]!);
    }
    this.count = keys.length;
  }

  /**
   * Builds from keys already in strictly increasing order (a snapshot's). Returns null if not;
   * `trusted`: the caller took them from an index in order, and the check is skipped.
   */
  static fromSorted(keys: readonly string[], chunkLoad: number = CHUNK_LOAD, trusted = false): SortedKeys | null {
    const sk = new SortedKeys(chunkLoad);
    if (!trusted) for (let i = 1; i < keys.length; i++) if (compareKeys(keys[i - 1]!, keys[i]!) >= 0) return null;
    sk.setSorted(keys);
    return sk;
  }

  /** The first chunk whose last key is ≥ key; chunks.length when key is beyond every chunk. */
  private chunkFor(key: string, native: boolean): number {
    return lowerBound(this.maxes, key, native);
  }

  /** Adds key; false if it was already present. */
  insert(key: string): boolean {
    this.settle();
    return this.place(key);
  }

  private place(key: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.maxes.push(key);
      this.count = 1;
      return true;
    }
    const native = nativeOrderHolds(key);
    let c = this.chunkFor(key, native);
    if (c === this.chunks.length) {
      // Beyond every key: append to the last chunk (the common case for increasing keys).
      c--;
      this.chunks[c]!.push(key);
      this.maxes[c] = key;
    } else {
      const chunk = this.chunks[c]!;
      const pos = lowerBound(chunk, key, native);
      if (chunk[pos] === key) return false;
      chunk.splice(pos, 0, key);
    }
    this.count++;
    const chunk = this.chunks[c]!;
    if (chunk.length > 2 * this.chunkLoad) {
      const tail = chunk.splice(this.chunkLoad);
      this.chunks.splice(c + 1, 0, tail);
      this.maxes.splice(c, 1, chunk[chunk.length - 1]!, tail[tail.length - 1]!);
    }
    return true;
  }

  /** Removes key; false if it was absent. */
  delete(key: string): boolean {
    this.settle();
    const native = nativeOrderHolds(key);
    const c = this.chunkFor(key, native);
    if (c === this.chunks.length) return false;
    const chunk = this.chunks[c]!;
    const pos = lowerBound(chunk, key, native);
    if (chunk[pos] !== key) return false;
    chunk.splice(pos, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.maxes.splice(c, 1);
      return true;
    }
    this.maxes[c] = chunk[chunk.length - 1]!;
    // Keep chunks from thinning out after mass deletes, so seeks stay logarithmic in chunks.
    const next = this.chunks[c + 1];
    if (chunk.length < this.chunkLoad / 4 && next !== undefined && chunk.length + next.length <= 2 * this.chunkLoad) {
      for (const k of next) chunk.push(k);
      this.chunks.splice(c + 1, 1);
      this.maxes.splice(c, 2, chunk[chunk.length - 1]!);
    }
    return true;
  }

  /**
   * Calls visit(key) for keys ≥ start in order until it returns false. The index MUST NOT be
   * changed during the walk.
   */
  forEachFrom(start: string, visit: (key: string) => boolean): void {
    this.settle();
    const native = nativeOrderHolds(start);
    let c = this.chunkFor(start, native);
    if (c === this.chunks.length) return;
    let pos = lowerBound(this.chunks[c]!, start, native);
    for (; c < this.chunks.length; c++, pos = 0) {
      const chunk = this.chunks[c]!;
      for (; pos < chunk.length; pos++) if (!visit(chunk[pos]!)) return;
    }
  }

  /** Every key in order, as one array: a copy of references, for a snapshot to walk later. */
  toArray(): string[] {
    this.settle();
    return this.toArrayPlaced();
  }

  private toArrayPlaced(): string[] {
    const out = new Array<string>(this.count);
    let n = 0;
    for (const chunk of this.chunks) for (let i = 0; i < chunk.length; i++) out[n++] = chunk[i]!;
    return out;
  }

  /** Chunk lengths, for tests of the structure's shape. */
  chunkSizes(): number[] {
    this.settle();
    return this.chunks.map((c) => c.length);
  }

  /** Every key in order. */
  *[Symbol.iterator](): IterableIterator<string> {
    this.settle();
    for (const chunk of this.chunks) yield* chunk;
  }
}
