// Values held by the register and key-value models, and the hashing and printing they share.

/** A stored value. `null` stands for "absent" (a key never written, or deleted). */
export type Value = string | number;

/** 32-bit FNV-1a over the value's type and content; `null` gets its own fixed hash. */
export function hashValue(v: Value | null): number {
  if (v === null) return 0x7f4a7c15;
  const text = typeof v === 'number' ? `n${v}` : `s${v}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The one name `simplify` gives every value that no read returned and no CAS expected. Such
 * values are only ever compared with observed values (or null), which they never equal, so
 * which of them the register holds cannot change any verdict; naming them alike lets the
 * search's cache and symmetry rules see states and timed-out writes as the same.
 */
export const UNOBSERVED = '\u0000unobserved';

const MAX_SHOWN = 24;

/** Short display form: `nil` for absent, numbers bare, strings quoted only when ambiguous. */
export function formatValue(v: Value | null): string {
  if (v === null) return 'nil';
  if (v === UNOBSERVED) return '(a value no read saw)';
  if (typeof v === 'number') return String(v);
  const plain = /^[A-Za-z_][\w.:-]*$/.test(v) && v !== 'nil';
  const shown = plain ? v : JSON.stringify(v);
  return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN - 1)}…` : shown;
}
