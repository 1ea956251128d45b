// What a received message must look like before it may touch any state (Figure 2, §5.1, §7).
// The core adopts the term of whatever it hears (§5.1) and writes what an AppendEntries carries
// (§5.3), so a single malformed or out-of-range message could otherwise leave a server in a state
// it cannot leave: a term whose successor the codec cannot encode, a log whose terms decrease
// (which the conflict hints' binary search and Log Matching both rely on never happening), a
// configuration entry that does not decode. isWellFormed checks the message alone; refusal
// checks it against this server's state, with what Election Safety and Leader Completeness
// promise. Raft.step runs both BEFORE anything changes, and counts what it drops.
import { configurationProblem, decodeConfiguration, isValidNodeId, members } from './configuration.js';
import { configAt } from './membership.js';
import type { Raft } from './raft.js';
import {
  ENTRY_TYPES,
  MAX_INDEX,
  MAX_TERM,
  type AppendEntries,
  type Configuration,
  type Entry,
  type Message,
  type NodeId,
  type Removed,
  type SnapshotMeta,
} from './types.js';

/** Why a received message was dropped without changing anything. */
export const DROP_REASONS = [
  /** Malformed, out of bounds, or inconsistent with itself or with this server's own log. */
  'invalid',
  /** Claims leadership of a term whose leader is another server (§5.2 Election Safety), or a TimeoutNow not from this term's leader (thesis §3.10). */
  'not-leader',
  /** A response from a server this leader keeps no progress for (not, or no longer, a member). */
  'stale-sender',
  /** Addressed to another server (say, one that held this address before): not for us to read. */
  'misaddressed',
  /**
   * An AppendEntries or InstallSnapshot of a current term that disagrees with entries this server
   * knows committed (§5.4.3 Leader Completeness). Between correct servers it never happens: its
   * sender leads a term without holding every committed entry, so a count here is an alarm.
   */
  'contradicts-committed',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

function isTerm(n: unknown): boolean {
  return Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_TERM;
}

function isIndex(n: unknown): boolean {
  return Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_INDEX;
}

/** Leader rounds (thesis §6.4) only count up from 0, one per heartbeat; any safe integer is encodable. */
function isSeq(n: unknown): boolean {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function isBool(b: unknown): boolean {
  return typeof b === 'boolean';
}

/** Terms only a leader or candidate sends are at least 1: bootstrap starts every server at term 1. */
function isLeaderTerm(n: number): boolean {
  return n >= 1 && isTerm(n);
}

/** Any reason `config` cannot be adopted, or null (configuration.ts). */
function configProblem(config: unknown): string | null {
  if (typeof config !== 'object' || config === null) return 'not an object';
  return configurationProblem(config as Configuration);
}

/** A configuration entry's data must decode to a configuration that could be in force. */
function isValidConfigEntry(data: Uint8Array): boolean {
  try {
    return configProblem(decodeConfiguration(data)) === null;
  } catch {
    return false;
  }
}

/**
 * The entries of an AppendEntries extend the log at prevLogIndex the way a leader's log does:
 * contiguous indexes, terms that never decrease (each leader appends in its own, newer term),
 * none older than prevLogTerm, none newer than the sender's term (a leader holds no entry of a
 * term after its own, §5.4.1).
 */
function areValidEntries(entries: unknown, prevLogIndex: number, prevLogTerm: number, term: number): boolean {
  if (!Array.isArray(entries)) return false;
  if (prevLogIndex + entries.length > MAX_INDEX) return false;
  let lastTerm = Math.max(prevLogTerm, 1);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry | null | undefined;
    if (typeof e !== 'object' || e === null) return false;
    if (e.index !== prevLogIndex + 1 + i) return false;
    if (!isTerm(e.term) || e.term < lastTerm || e.term > term) return false;
    if (!ENTRY_TYPES.includes(e.type) || !(e.data instanceof Uint8Array)) return false;
    if (e.type === 'config' && !isValidConfigEntry(e.data)) return false;
    lastTerm = e.term;
  }
  return true;
}

/**
 * True when `m` is well formed for a server with id `self`: every term and index within
 * [0, MAX_TERM] and [0, MAX_INDEX], every field of the right type, and the relations Figure 2's
 * senders always keep (a log's terms never exceed the term of the server that holds it; index 0
 * has term 0). Pure: it reads nothing but `m`.
 */
export function isWellFormed(m: Message, self: NodeId): boolean {
  if (typeof m !== 'object' || m === null) return false;
  if (!isValidNodeId(m.from) || m.from === self || !isTerm(m.term)) return false;
  switch (m.type) {
    case 'RequestVote':
      return (
        isLeaderTerm(m.term) && isBool(m.preVote) && isBool(m.transfer) &&
        // Only a real election is forced by a transfer (thesis §3.10); a pre-vote never is.
        !(m.preVote && m.transfer) &&
        isIndex(m.lastLogIndex) && isTerm(m.lastLogTerm) && m.lastLogTerm <= m.term &&
        (m.lastLogIndex > 0 || m.lastLogTerm === 0)
      );
    case 'RequestVoteResponse':
      return isBool(m.preVote) && isBool(m.voteGranted);
    case 'AppendEntries':
      return (
        isLeaderTerm(m.term) && isIndex(m.prevLogIndex) && isTerm(m.prevLogTerm) && m.prevLogTerm <= m.term &&
        (m.prevLogIndex > 0 || m.prevLogTerm === 0) &&
        isIndex(m.leaderCommit) && isSeq(m.seq) && (m.leaderStable === undefined || isIndex(m.leaderStable)) &&
        areValidEntries(m.entries, m.prevLogIndex, m.prevLogTerm, m.term)
      );
    case 'AppendEntriesResponse':
      if (!isBool(m.success) || !isIndex(m.matchIndex) || !isIndex(m.rejectedIndex) || !isSeq(m.seq)) return false;
      // The hint's index may be one past a full log (lastIndex + 1); its term is in the responder's log.
      if (!isTerm(m.conflictTerm) || m.conflictTerm > m.term) return false;
      if (!Number.isSafeInteger(m.conflictIndex) || m.conflictIndex < 0 || m.conflictIndex > MAX_INDEX + 1) return false;
      return m.success ? m.rejectedIndex === 0 && m.conflictTerm === 0 && m.conflictIndex === 0 : m.matchIndex === 0;
    case 'InstallSnapshot': {
      if (!isLeaderTerm(m.term) || !isSeq(m.seq)) return false;
      const snapshot = m.snapshot as InstallSnapshotShape | null | undefined;
      if (typeof snapshot !== 'object' || snapshot === null || !(snapshot.data instanceof Uint8Array)) return false;
      const meta = snapshot.meta;
      if (typeof meta !== 'object' || meta === null) return false;
      // §7: a snapshot replaces a prefix of the leader's log, so its last entry is no newer than the leader.
      return (
        isIndex(meta.index) && (meta.index as number) >= 1 &&
        isLeaderTerm(meta.term as number) && (meta.term as number) <= m.term &&
        configProblem(meta.config) === null
      );
    }
    case 'InstallSnapshotResponse':
      return isIndex(m.matchIndex) && isSeq(m.seq);
    case 'TimeoutNow':
      return isLeaderTerm(m.term);
    case 'Removed':
      return isLeaderTerm(m.term) && isIndex(m.configIndex) && m.configIndex >= 1;
    default: {
      const never: never = m;
      void never;
      return false;
    }
  }
}

/**
 * Why a well-formed message must not move this server, or null. Figure 2 trusts that a message
 * of term T claiming leadership comes from T's leader; these checks hold it to what Election
 * Safety (§5.2: at most one leader per term) and Leader Completeness (§5.4.3) imply, so a
 * message that contradicts them is dropped instead of adopted.
 */
export function refusal(r: Raft, m: Message): DropReason | null {
  switch (m.type) {
    case 'AppendEntries':
    case 'InstallSnapshot':
    case 'Removed':
      if (m.term < r.term) return null; // §5.1: stale; Raft.step answers it with our term
      if (m.term === r.term && (r.currentRole === 'leader' || (r.leader !== null && r.leader !== m.from))) {
        return 'not-leader';
      }
      if (m.type === 'Removed') {
        // A leader sends Removed only once this server acknowledged, in the leader's term,
        // the entry that drops it (membership.ts): never in a term newer than ours, never
        // for an entry we do not hold.
        if (m.term > r.term) return 'not-leader';
        return holdsRemoval(r, m) ? null : 'invalid';
      }
      if (m.type === 'AppendEntries') return conflictsWithCommitted(r, m) ? 'contradicts-committed' : null;
      return snapshotConflictsWithCommitted(r, m.snapshot.meta) ? 'contradicts-committed' : null;
    case 'TimeoutNow':
      // Thesis §3.10: only the leader sends TimeoutNow, to a follower that acknowledged its log
      // in its term; so it never carries a newer term, and it comes from the leader we follow.
      // A (pre-)candidate of the same term may get it late from the leader it stopped hearing;
      // it contradicts nothing there, and the candidate's step ignores it.
      if (m.term < r.term) return null;
      if (m.term > r.term || r.currentRole === 'leader') return 'not-leader';
      if (r.currentRole === 'follower') return r.leader === m.from ? null : 'not-leader';
      return r.leader === null || r.leader === m.from ? null : 'not-leader';
    case 'AppendEntriesResponse':
    case 'InstallSnapshotResponse': {
      if (r.currentRole !== 'leader' || m.term !== r.term) return null;
      if (!r.progresses.has(m.from)) return 'stale-sender';
      // An answer of this term echoes a round and indexes this leader sent: no round it has
      // not begun, no index past its log (a leader's log only grows within its term).
      if (m.seq > r.seq) return 'invalid';
      const upTo = m.type === 'AppendEntriesResponse' ? Math.max(m.matchIndex, m.rejectedIndex) : m.matchIndex;
      return upTo > r.log.lastIndex ? 'invalid' : null;
    }
    case 'RequestVote':
    case 'RequestVoteResponse':
      return null;
    default: {
      const never: never = m;
      void never;
      return 'invalid';
    }
  }
}

/**
 * §5.4.3 Leader Completeness: the leader of any term ≥ ours holds every entry we know to be
 * committed. An AppendEntries of such a term whose prevLogTerm or entries disagree with our
 * committed prefix cannot come from that leader; adopting it would make replicas diverge.
 * (A stale AppendEntries, of an older term, may legitimately disagree: it is refused by §5.1.)
 */
function conflictsWithCommitted(r: Raft, m: AppendEntries): boolean {
  const commit = r.commit;
  if (m.prevLogIndex <= commit) {
    const local = r.log.termAt(m.prevLogIndex);
    if (local !== undefined && local !== m.prevLogTerm) return true;
  }
  const end = Math.min(commit, m.prevLogIndex + m.entries.length);
  for (let i = Math.max(m.prevLogIndex + 1, r.log.snapshotIndex); i <= end; i++) {
    const local = r.log.termAt(i);
    if (local !== undefined && local !== m.entries[i - m.prevLogIndex - 1]!.term) return true;
  }
  return false;
}

/** The same for a snapshot (§7): if it ends inside our committed prefix, it ends on the same entry. */
function snapshotConflictsWithCommitted(r: Raft, meta: SnapshotMeta): boolean {
  if (meta.index > r.commit) return false;
  const local = r.log.termAt(meta.index);
  return local !== undefined && local !== meta.term;
}

/**
 * Does our log hold the configuration entry a `Removed` names, and leave us out there? An
 * entry compacted into our snapshot is left to noteRemoved, which ignores a notice older than
 * a configuration that includes us.
 */
function holdsRemoval(r: Raft, m: Removed): boolean {
  if (m.configIndex > r.log.lastIndex) return false;
  if (m.configIndex <= r.log.snapshotIndex) return true;
  return !members(configAt(r, m.configIndex)).includes(r.id);
}

interface InstallSnapshotShape {
  readonly meta: { readonly index: unknown; readonly term: unknown; readonly config: unknown } | null;
  readonly data: unknown;
}
