// When a write's conditions hold: the compare-and-set forms of a put or delete (prevValue,
// prevIndex, prevExist; all given ones must hold) and a transaction's etcd-style compares.
import type { CompareOp, DeleteCommand, PutCommand, TxnCompare } from './command.js';
import type { KvRecord } from './result.js';

/** Byte-wise lexicographic order; a proper prefix sorts first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A missing key fails prevValue and prevIndex: there is nothing to compare against. */
export function writeConditionsHold(cmd: PutCommand | DeleteCommand, current: KvRecord | undefined): boolean {
  if (cmd.type === 'put' && cmd.prevExist !== undefined && cmd.prevExist !== (current !== undefined)) return false;
  if (cmd.prevValue !== undefined && (current === undefined || !bytesEqual(current.value, cmd.prevValue))) return false;
  if (cmd.prevIndex !== undefined && (current === undefined || current.modIndex !== cmd.prevIndex)) return false;
  return true;
}

export function hasWriteConditions(cmd: PutCommand | DeleteCommand): boolean {
  return cmd.prevValue !== undefined || cmd.prevIndex !== undefined || (cmd.type === 'put' && cmd.prevExist !== undefined);
}

function opHolds(op: CompareOp, difference: number): boolean {
  switch (op) {
    case '=':
      return difference === 0;
    case '!=':
      return difference !== 0;
    case '<':
      return difference < 0;
    case '>':
      return difference > 0;
  }
}

/**
 * A missing key counts as version, indexes, revisions and lease 0 (so `version = 0` tests absence);
 * it has no value, so every `value` compare against it is false.
 */
export function compareHolds(c: TxnCompare, current: KvRecord | undefined): boolean {
  if (c.target === 'value') return current !== undefined && opHolds(c.op, compareBytes(current.value, c.value));
  const actual = current === undefined ? 0 : current[c.target];
  return opHolds(c.op, actual - c.value);
}
