// State Machine Safety (Figure 3, §5.4.3): if a server has applied a log entry at a given index
// to its state machine, no other server will ever apply a different log entry for the same
// index. Every applied entry is compared with the first one applied at its index; the state
// machines' running hashes are compared too, and a snapshot a node restores from must carry the
// running hash the cluster had at its index (so a snapshot cannot smuggle in a different history).
import type { Entry } from '../../raft/index.js';
import { describeEntry, sameEntry, violation } from './violation.js';

export class StateMachineSafety {
  private readonly applied: (Entry | undefined)[] = [];
  /** Running state hash after each index, -1 while unknown (hashes are unsigned). */
  private readonly hashes: number[] = [];
  private readonly firstBy: string[] = [];

  /** The entry first applied at `index`, if any node applied it. */
  appliedAt(index: number): Entry | undefined {
    return this.applied[index];
  }

  get highestApplied(): number {
    return this.applied.length - 1;
  }

  /** `nodeId` applied `entry`; its state machine's running hash is now `hash`. */
  apply(nodeId: string, entry: Entry, hash: number): void {
    const i = entry.index;
    this.grow(i);
    const first = this.applied[i];
    if (first === undefined) {
      this.applied[i] = entry;
    } else if (!sameEntry(first, entry)) {
      violation('State Machine Safety', `index ${i}: ${this.firstBy[i]} applied ${describeEntry(first)}, ${nodeId} applied ${describeEntry(entry)}`);
    }
    this.checkHash(nodeId, i, hash, 'applying it');
  }

  /** `nodeId` replaced its state with a snapshot whose state machine was at (index, hash). */
  restore(nodeId: string, index: number, hash: number): void {
    if (index === 0) return;
    this.grow(index);
    this.checkHash(nodeId, index, hash, 'restoring a snapshot there');
  }

  private checkHash(nodeId: string, index: number, hash: number, how: string): void {
    const known = this.hashes[index]!;
    if (known === -1) {
      this.hashes[index] = hash;
      this.firstBy[index] = nodeId;
    } else if (known !== hash) {
      violation('State Machine Safety', `index ${index}: ${nodeId}'s state after ${how} (hash ${hash}) differs from ${this.firstBy[index]}'s (hash ${known})`);
    }
  }

  private grow(index: number): void {
    while (this.applied.length <= index) {
      this.applied.push(undefined);
      this.hashes.push(-1);
      this.firstBy.push('');
    }
  }
}
