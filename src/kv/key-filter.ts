// A Bloom filter over the keys of a base read through a window (base-table.ts): a lookup of a
// key the base does not hold is answered from memory instead of a read of the file. A restart's
// replay of writes to new keys looks up every one of them, and through the file each lookup is a
// positional read (3.5 µs for 4 KiB on this VM) plus the search among its records; through the
// filter, six bits of one 64-byte block in ~2 MB at 1M keys.
//
// Blocked: a key's six bits all lie in one block of 512 bits (a cache line), chosen by its hash,
// so that adding or testing a key costs one cache miss, not six (1M keys added in ~140 ms with
// six lines each, measured). No false negatives: a key added is always "maybe". Of the keys not
// added, 0.15–0.9 % pass at 1M keys in 2 MB (10 to 20 bits a key once rounded to a power of two)
// and are looked up anyway.
import { keyHash } from './idempotency.js';

/** Bits per key, at least (the size rounds up to a power of two). */
const BITS_PER_KEY = 10;
/** Bits set and tested per key: ~ln 2 · bits per key. */
const PROBES = 6;
/** A block: 16 words of 32 bits, one cache line. */
const BLOCK_WORDS = 16;

export class KeyFilter {
  private readonly words: Int32Array;
  /** Block numbers are hashes masked to the filter's block count (a power of two). */
  private readonly blockMask: number;
  /** Drawn per filter: a client cannot choose keys that all pass. */
  private readonly seed = (Math.random() * 0x100000000) >>> 0;

  /** A filter sized for `keys` keys. */
  constructor(keys: number) {
    let blocks = 2;
    while (blocks * BLOCK_WORDS * 32 < keys * BITS_PER_KEY && blocks < 2 ** 24) blocks *= 2;
    this.words = new Int32Array(blocks * BLOCK_WORDS);
    this.blockMask = blocks - 1;
  }

  /** Adds the key whose UTF-8 bytes are `buf[start, start + n)`. */
  add(buf: Uint8Array, start: number, n: number): void {
    this.probe(buf, start, n, true);
  }

  /** False if the key whose UTF-8 bytes are `buf[0, n)` was never added; true if it may have been. */
  mayHold(buf: Uint8Array, n: number): boolean {
    return this.probe(buf, 0, n, false);
  }

  /** The key's six bits, in the block its hash chooses: set (`add`), or tested (false if one is clear). */
  private probe(buf: Uint8Array, start: number, n: number, add: boolean): boolean {
    // The block from one mix of the key's hash, the bits in it from another. A key whose whole
    // hash collides with a held key's passes: with seeded FNV-1a (keyHash) and 1M structured
    // keys that is 0–0.25 % of absent keys depending on the seed (false positives 0.15–0.9 %
    // in all, measured), each costing one read; a second hash of every key cost more than that
    // (~30–100 ms a restore at 1M keys).
    const h = keyHash(buf, start, n, this.seed);
    const block = (mix(h) & this.blockMask) * BLOCK_WORDS;
    const h2 = mix(h ^ 0x9e3779b9);
    const step = (h2 >>> 16) | 1;
    const words = this.words;
    for (let i = 0; i < PROBES; i++) {
      const b = (h2 + Math.imul(i, step)) & 511;
      const w = block + (b >>> 5);
      const bit = 1 << (b & 31);
      if (add) words[w]! |= bit;
      else if ((words[w]! & bit) === 0) return false;
    }
    return true;
  }

  /** The filter's memory, in bytes. */
  get bytes(): number {
    return this.words.byteLength;
  }
}

/** murmur3's finalizer: every bit of `h` moves every bit of the result. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
