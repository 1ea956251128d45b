// Fabricated nodes for the invariant checkers' tests: a log given as terms (and optional payload
// bytes), with the role, term, vote and commit index the test wants.
import { encodeConfiguration, type Configuration, type Entry, type NodeId, type Role } from '../../src/raft/index.js';
import type { MemberView } from '../../src/sim/invariants/index.js';

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
  /** Indexes (after the snapshot) whose entries are configuration entries, and what they hold. */
  configEntries?: Record<number, Configuration>;
  /** The configuration the node acts on (default: the newest of configEntries, or 3 voters). */
  config?: Configuration;
  /** Its entry's index (default: the newest of configEntries, or the snapshot's index). */
  configIndex?: number;
  /** What it was told of its own removal (default: nothing). */
  removed?: { by: NodeId; configIndex: number };
}

export function voters(...ids: NodeId[]): Configuration {
  return { voters: ids, votersOutgoing: [], learners: [] };
}

export function entry(index: number, term: number, byte = index): Entry {
  return { index, term, type: 'normal', data: new Uint8Array([byte]) };
}

export function fakeNode(spec: FakeNodeSpec): MemberView {
  const snapshotIndex = spec.snapshotIndex ?? 0;
  const snapshotTerm = spec.snapshotTerm ?? 0;
  const configs = spec.configEntries ?? {};
  const entries: Entry[] = (spec.log ?? []).map((t, k) => {
    const index = snapshotIndex + k + 1;
    const c = configs[index];
    return c === undefined ? entry(index, t, spec.data?.[k] ?? index) : { index, term: t, type: 'config', data: encodeConfiguration(c) };
  });
  const newest = Math.max(snapshotIndex, ...Object.keys(configs).map(Number));
  return {
    config: spec.config ?? configs[newest] ?? voters('n1', 'n2', 'n3'),
    configIndex: spec.configIndex ?? newest,
    removed: spec.removed ?? null,
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
