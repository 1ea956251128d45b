// Fabricated nodes for the invariant checkers' tests: a log given as terms (and optional payload
// bytes), with the role, term, vote and commit index the test wants.
import type { Entry, NodeId, Role } from '../../src/raft/index.js';
import type { NodeView } from '../../src/sim/invariants/index.js';

export interface FakeNodeSpec {
  id: NodeId;
  role?: Role;
  term?: number;
  votedFor?: NodeId | null;
  commit?: number;
  /** Terms of the entries after the snapshot, in index order. */
  log?: number[];
  /** Payload bytes per entry (default: one byte = its index). */
  data?: number[];
  snapshotIndex?: number;
  snapshotTerm?: number;
}

export function entry(index: number, term: number, byte = index): Entry {
  return { index, term, type: 'normal', data: new Uint8Array([byte]) };
}

export function fakeNode(spec: FakeNodeSpec): NodeView {
  const snapshotIndex = spec.snapshotIndex ?? 0;
  const snapshotTerm = spec.snapshotTerm ?? 0;
  const entries = (spec.log ?? []).map((t, k) => entry(snapshotIndex + k + 1, t, spec.data?.[k] ?? snapshotIndex + k + 1));
  return {
    id: spec.id,
    role: spec.role ?? 'follower',
    currentTerm: spec.term ?? Math.max(snapshotTerm, ...(spec.log ?? [0])),
    votedFor: spec.votedFor ?? null,
    commitIndex: spec.commit ?? 0,
    snapshotIndex,
    snapshotTerm,
    lastIndex: snapshotIndex + entries.length,
    termAt(i: number): number | undefined {
      if (i === snapshotIndex) return snapshotTerm;
      return entries[i - snapshotIndex - 1]?.term;
    },
    entryAt(i: number): Entry | undefined {
      return entries[i - snapshotIndex - 1];
    },
  };
}
