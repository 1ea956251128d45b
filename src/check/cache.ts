// The memo of configurations already explored, after Lowe 2017 §3 ("Linearizability testing:
// Wing & Gong's algorithm with a cache"): a configuration is the set of ops linearized so far
// (a bitset) plus the model state reached. Reaching one a second time, by another order of the
// same ops, can lead nowhere new, so the search prunes it.
//
// Our extension for unknown outcomes: such ops never have to be placed and never hold anyone
// back (they have no return), so a configuration that placed a SUBSET of the unknown ops, with
// the same known ops and state, can do everything this one can and more. The cache therefore
// prunes a configuration dominated by one already seen: equal known ops, equal state, placed
// unknown ops a subset. Without this, k lingering timed-out writes multiply the configurations
// by up to 2^k (each can be slipped in harmlessly just before an overwrite).
import type { Model } from './types.js';

/**
 * A fixed-size bitset of linearized ops. It keeps a Zobrist-style hash of its known-outcome bits
 * up to date on every flip, so hashing a configuration costs O(1) rather than O(ops / 32).
 */
export class LinearizedSet {
  readonly words: Uint32Array;
  /** Bit set for each op with a known outcome. */
  readonly knownMask: Uint32Array;
  knownHash = 0;

  constructor(isKnown: Uint8Array) {
    const size = Math.max(1, Math.ceil(isKnown.length / 32));
    this.words = new Uint32Array(size);
    this.knownMask = new Uint32Array(size);
    for (let i = 0; i < isKnown.length; i++) {
      if (isKnown[i] === 1) this.knownMask[i >>> 5] = ((this.knownMask[i >>> 5] as number) | (1 << (i & 31))) >>> 0;
    }
  }

  /** Flips bit `i` (set when clear, clear when set): lift and unlift are exact inverses. */
  flip(i: number): void {
    const bit = (1 << (i & 31)) >>> 0;
    this.words[i >>> 5] = ((this.words[i >>> 5] as number) ^ bit) >>> 0;
    if (((this.knownMask[i >>> 5] as number) & bit) !== 0) this.knownHash = (this.knownHash ^ bitHash(i)) >>> 0;
  }
}

/** A well-mixed 32-bit value per bit position (murmur3's finaliser), so XORs rarely collide. */
function bitHash(i: number): number {
  let h = (i + 0x9e3779b9) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

interface Configuration<S> {
  readonly words: Uint32Array;
  readonly state: S;
}

export class ConfigurationCache<S> {
  private readonly buckets = new Map<number, Configuration<S>[]>();
  private readonly model: Pick<Model<S, unknown, unknown>, 'equal' | 'hash'>;
  size = 0;

  constructor(model: Pick<Model<S, unknown, unknown>, 'equal' | 'hash'>) {
    this.model = model;
  }

  /**
   * Records (set, state); false when it or a configuration dominating it was already there (the
   * caller prunes that branch).
   */
  add(set: LinearizedSet, state: S): boolean {
    const key = (set.knownHash ^ Math.imul(this.model.hash(state) | 0, 0x27d4eb2d)) >>> 0;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(key, bucket);
    } else {
      for (const seen of bucket) {
        if (dominates(seen.words, set.words, set.knownMask) && this.model.equal(seen.state, state)) return false;
      }
    }
    bucket.push({ words: set.words.slice(), state });
    this.size++;
    return true;
  }
}

/** Same known ops, and the seen configuration's unknown ops a subset of the current one's. */
function dominates(seen: Uint32Array, current: Uint32Array, knownMask: Uint32Array): boolean {
  for (let w = 0; w < seen.length; w++) {
    const s = seen[w] as number;
    const c = current[w] as number;
    if ((s & ~c) !== 0 || ((s ^ c) & (knownMask[w] as number)) !== 0) return false;
  }
  return true;
}
