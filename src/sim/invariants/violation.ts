// What every invariant checker shares: the read-only view of a node it inspects (the core's own
// getters satisfy it, and tests can fabricate one) and the error that stops a run.
import type { Configuration, Entry, NodeId, Role } from '../../raft/index.js';

export const INVARIANTS = [
  'Election Safety',
  'Leader Append-Only',
  'Log Matching',
  'Leader Completeness',
  'State Machine Safety',
  'Commit Index Monotonic',
  'Term Monotonic',
  'Single Vote',
  'Durability',
  'Liveness',
  'Linearizable Reads',
  'Config Change One At A Time',
  'Config On Append',
  'Leaving Leader Steps Down',
  'Voter Quorum',
  'Vote Lease',
  'Removal Notice',
  'Persist Before Send',
  'Apply Only Committed',
  'Runtime Contract',
  // Issue 12: a lease the leader expires went a whole TTL without an acknowledged keep-alive.
  'Lease Safety',
  // A follower's own count of a commit (src/raft/follower.ts) stood on two durable copies.
  'Counted Commit',
  // A leader commits an entry of its term only once a majority of its voters' storage holds it.
  'Durable Majority',
] as const;
export type InvariantName = (typeof INVARIANTS)[number];

/** A log as the checkers see it: entries after the snapshot, plus the snapshot's position. */
export interface LogView {
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  termAt(index: number): number | undefined;
  entryAt(index: number): Entry | undefined;
}

/** A node as the checkers see it; `Raft` satisfies this structurally. */
export interface NodeView extends LogView {
  readonly id: NodeId;
  readonly role: Role;
  readonly currentTerm: number;
  readonly votedFor: NodeId | null;
  readonly commitIndex: number;
}

/** A node with its membership view (thesis §4.1); `Raft` satisfies this too. */
export interface MemberView extends NodeView {
  /** The configuration in force: the newest in the log, committed or not. */
  readonly config: Configuration;
  /** The index of the entry that holds it (the snapshot's index if compacted away). */
  readonly configIndex: number;
  /** Set once the server knows it is out of the cluster (who said so, and the entry). */
  readonly removed: { readonly by: NodeId; readonly configIndex: number } | null;
}

export class InvariantViolation extends Error {
  readonly invariant: InvariantName;
  readonly details: string;
  constructor(invariant: InvariantName, details: string) {
    super(`${invariant} violated: ${details}`);
    this.name = 'InvariantViolation';
    this.invariant = invariant;
    this.details = details;
  }
}

export function violation(invariant: InvariantName, details: string): never {
  throw new InvariantViolation(invariant, details);
}

/** Same entry: identical object, or equal index, term, type and bytes. */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type) return false;
  const x = a.data;
  const y = b.data;
  if (x === y) return true;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function describeEntry(e: Entry | undefined): string {
  if (e === undefined) return '(none)';
  return `{index ${e.index}, term ${e.term}, ${e.type}, ${e.data.length}B}`;
}
