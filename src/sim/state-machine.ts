// A tiny deterministic state machine for the simulator (§5.3 "apply log[lastApplied]"): it
// remembers nothing but the last applied (index, term), how many commands it applied, and a
// running hash folded over every applied entry's (index, term, data). Two replicas with equal
// hashes at an index applied the same sequence, which makes State Machine Safety checkable in
// O(1) per entry and lets a restored snapshot be checked against the cluster's history.
import type { Entry, StateMachine } from '../raft/index.js';
import { HASH_SEED, foldNumber, hashBytes } from './hash.js';

const SNAPSHOT_BYTES = 32;

export interface SimMachineState {
  readonly index: number;
  readonly term: number;
  readonly hash: number;
  readonly commands: number;
}

/** The running hash after applying `entry` on top of `previous`. */
export function chainHash(previous: number, entry: Entry): number {
  let h = foldNumber(previous, entry.index);
  h = foldNumber(h, entry.term);
  if (entry.type === 'config') return foldNumber(h, 1);
  return foldNumber(h, entry.data.length === 0 ? 0 : hashBytes(entry.data));
}

export class SimStateMachine implements StateMachine<number> {
  index = 0;
  term = 0;
  hash = HASH_SEED;
  /** Non-empty normal entries applied: the "commands" a client sees. */
  commands = 0;

  /** Applies one entry and returns the running hash after it. */
  apply(entry: Entry): number {
    if (entry.index !== this.index + 1) {
      // The runtime contract: each index exactly once, in order. A gap or repeat is a bug.
      throw new Error(`state machine at ${this.index} was handed entry ${entry.index}`);
    }
    this.index = entry.index;
    this.term = entry.term;
    this.hash = chainHash(this.hash, entry);
    if (entry.type === 'normal' && entry.data.length > 0) this.commands++;
    return this.hash;
  }

  snapshot(): Uint8Array {
    const bytes = new Uint8Array(SNAPSHOT_BYTES);
    const view = new DataView(bytes.buffer);
    view.setFloat64(0, this.index);
    view.setFloat64(8, this.term);
    view.setUint32(16, this.hash);
    view.setFloat64(20, this.commands);
    return bytes;
  }

  restore(data: Uint8Array): void {
    const s = decodeSimSnapshot(data);
    this.index = s.index;
    this.term = s.term;
    this.hash = s.hash;
    this.commands = s.commands;
  }
}

export function decodeSimSnapshot(data: Uint8Array): SimMachineState {
  if (data.length !== SNAPSHOT_BYTES) throw new Error(`sim snapshot has ${data.length} bytes, expected ${SNAPSHOT_BYTES}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: view.getFloat64(0), term: view.getFloat64(8), hash: view.getUint32(16), commands: view.getFloat64(20) };
}
