// Durability (the contract behind a 200 on a write, and Leader Completeness seen by a client):
// every acknowledged proposal is in the final committed log, at the index it was acknowledged
// at. A proposal is acknowledged when the leader that accepted it applied that index with the
// same payload; at the end of a run every such (index, payload) must still be there.
import type { Entry } from '../../raft/index.js';
import { bytesEqual } from '../hash.js';
import { describeEntry, violation } from './violation.js';

export class Durability {
  private readonly indexes: number[] = [];
  private readonly payloads: Uint8Array[] = [];

  get acknowledged(): number {
    return this.indexes.length;
  }

  acknowledge(index: number, payload: Uint8Array): void {
    this.indexes.push(index);
    this.payloads.push(payload);
  }

  /**
   * `commitIndex` is the final committed log's end; `entryAt` returns its entries (undefined
   * only where nobody can tell any more: compacted everywhere, then covered by the state hash
   * checks of State Machine Safety).
   */
  finish(commitIndex: number, entryAt: (index: number) => Entry | undefined): void {
    for (let k = 0; k < this.indexes.length; k++) {
      const index = this.indexes[k]!;
      if (index > commitIndex) {
        violation('Durability', `acknowledged entry ${index} is beyond the final commitIndex ${commitIndex}`);
      }
      const e = entryAt(index);
      if (e !== undefined && !bytesEqual(e.data, this.payloads[k]!)) {
        violation('Durability', `acknowledged entry ${index} was replaced in the final committed log by ${describeEntry(e)}`);
      }
    }
  }
}
