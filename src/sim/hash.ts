// Small, fast, non-cryptographic hashing for the simulator: the state machine's running hash,
// the Log Matching records and the trace fingerprint that proves a run replays exactly.

/** FNV-1a over bytes. */
export function hashBytes(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Folds one number (integral or not) into a running 32-bit hash. */
export function foldNumber(h: number, x: number): number {
  // Integers up to 2^53 fold exactly through their two 32-bit halves.
  const lo = x >>> 0;
  const hi = Math.floor(x / 4294967296) >>> 0;
  h = Math.imul(h ^ lo, 0x9e3779b1);
  h = Math.imul((h ^ (h >>> 15)) ^ hi, 0x85ebca77);
  return (h ^ (h >>> 13)) >>> 0;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const HASH_SEED = 0x2545f491;
