// A Bloom filter over the keys of a base read through a window (base-table.ts): a lookup of a
// key the base does not hold is answered from memory instead of a read of the file. A restart's
// replay of writes to new keys looks up every one of them, and through the file each lookup is a
// positional read (3.5 µs for 4 KiB on this VM) plus the search among its records; through the
// filter, six bits in ~2 MB at 1M keys.
//
// No false negatives: a key added is always "maybe". Of the keys not added, ~1 % (10 bits a key,
// 6 probes; up to 20 bits a key once rounded to a power of two) pass and are looked up anyway.
import { keyHash } from './idempotency.js';

/** Bits per key, at least (the size rounds up to a power of two). */
const BITS_PER_KEY = 10;
/** Bits set and tested per key: ~ln 2 · bits per key. */
const PROBES = 6;

export class KeyFilter {
  private readonly bits: Int32Array;
  /** Bit positions are hashes masked to the filter's size (a power of two). */
  private readonly mask: number;
  /** Drawn per filter: a client cannot choose keys that all pass. */
  private readonly seed = (Math.random() * 0x100000000) >>> 0;

  /** A filter sized for `keys` keys. */
  constructor(keys: number) {
    let size = 1024;
    while (size < keys * BITS_PER_KEY && size < 2 ** 31) size *= 2;
    this.bits = new Int32Array(size >>> 5);
    this.mask = size - 1;
  }

  /** Adds the key whose UTF-8 bytes are `buf[start, start + n)`. */
  add(buf: Uint8Array, start: number, n: number): void {
    const h1 = keyHash(buf, start, n, this.seed);
    const h2 = second(h1);
    const bits = this.bits;
    for (let i = 0; i < PROBES; i++) {
      const b = (h1 + Math.imul(i, h2)) & this.mask;
      bits[b >>> 5]! |= 1 << (b & 31);
    }
  }

  /** False if the key whose UTF-8 bytes are `buf[0, n)` was never added; true if it may have been. */
  mayHold(buf: Uint8Array, n: number): boolean {
    const h1 = keyHash(buf, 0, n, this.seed);
    const h2 = second(h1);
    const bits = this.bits;
    for (let i = 0; i < PROBES; i++) {
      const b = (h1 + Math.imul(i, h2)) & this.mask;
      if ((bits[b >>> 5]! & (1 << (b & 31))) === 0) return false;
    }
    return true;
  }

  /** The filter's memory, in bytes. */
  get bytes(): number {
    return this.bits.byteLength;
  }
}

/** The second hash of double hashing (Kirsch–Mitzenmacher): a mix of the first, odd so that its multiples cover the filter. */
function second(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 1;
}
