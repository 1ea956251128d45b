// The append rules both storages enforce (§5.3): a batch is contiguous, and it may start at any
// index up to lastIndex + 1; starting at or below lastIndex truncates the conflicting suffix.
import type { Entry } from '../raft/types.js';
import { StorageUsageError } from './errors.js';

/** Throws unless `entries` is contiguous and starts no later than lastIndex + 1. */
export function validateAppend(entries: readonly Entry[], lastIndex: number): void {
  const first = entries[0]!.index;
  if (first > lastIndex + 1) {
    throw new StorageUsageError(`append leaves a gap: first index ${first}, stored last index ${lastIndex}`);
  }
  if (first < 1) throw new StorageUsageError(`append of index ${first}: indexes start at 1`);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index !== first + i) {
      throw new StorageUsageError(`append batch is not contiguous at position ${i}: index ${entries[i]!.index}`);
    }
  }
}
