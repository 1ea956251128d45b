// A Bloom filter over the keys of a base read through a window (base-table.ts): a lookup of a
// key the base does not hold is answered from memory instead of a read of the file. A restart's
// replay of writes to new keys looks up every one of them, and through the file each lookup is a
// positional read (3.5 µs for 4 KiB on this VM) plus the search among its records; through the
// filter, six bits of one 64-byte block in ~2 MB at 1M keys.
//
// Blocked: a key's six bits all lie in one block of 512 bits (a cache line), chosen by its hash,
// so that adding or testing a key costs one cache miss, not six (1M keys added in ~140 ms with
// six lines each, measured). No false negatives: a key added is always "maybe". Of the keys not
// added, ~1–2 % (10 to 20 bits a key once rounded to a power of two) pass and are looked up anyway.
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
    const h1 = keyHash(buf, start, n, this.seed);
    const h2 = second(h1);
    const step = (h2 >>> 16) | 1;
    const block = (h1 & this.blockMask) * BLOCK_WORDS;
    const words = this.words;
    for (let i = 0; i < PROBES; i++) {
      const b = (h2 + Math.imul(i, step)) & 511;
      words[block + (b >>> 5)]! |= 1 << (b & 31);
    }
  }

  /** False if the key whose UTF-8 bytes are `buf[0, n)` was never added; true if it may have been. */
  mayHold(buf: Uint8Array, n: number): boolean {
    const h1 = keyHash(buf, 0, n, this.seed);
    const h2 = second(h1);
    const step = (h2 >>> 16) | 1;
    const block = (h1 & this.blockMask) * BLOCK_WORDS;
    const words = this.words;
    for (let i = 0; i < PROBES; i++) {
      const b = (h2 + Math.imul(i, step)) & 511;
      if ((words[block + (b >>> 5)]! & (1 << (b & 31))) === 0) return false;
    }
    return true;
  }

  /** The filter's memory, in bytes. */
  get bytes(): number {
    return this.words.byteLength;
  }
}

/** A second hash, mixed from the first (murmur3's finalizer): the bits within the block. */
function second(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
