// The follower and candidate step functions: the AppendEntries receiver of Figure 2 (§5.3), the
// InstallSnapshot receiver (§7), answers to stale requests (§5.1), and a candidate's vote tally.
import { isJoint } from './configuration.js';
import { countVotes, startElection } from './election.js';
import { lastConfigIndex, noteConfigEntry, noteRemoved } from './membership.js';
import { send } from './outbox.js';
import { committedIndex } from './quorum.js';
import type { Raft } from './raft.js';
import { becomeFollower } from './roles.js';
import type {
  AppendEntries,
  AppendEntriesResponse,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  NodeId,
  RequestVote,
} from './types.js';

export function stepCandidate(r: Raft, m: Exclude<Message, RequestVote>): void {
  switch (m.type) {
    case 'AppendEntries':
      // §5.2: a leader of this term exists; step down and follow it.
      becomeFollower(r, m.term, m.from);
      handleAppendEntries(r, m);
      return;
    case 'InstallSnapshot':
      becomeFollower(r, m.term, m.from);
      handleInstallSnapshot(r, m);
      return;
    case 'RequestVoteResponse': {
      const isPre = r.currentRole === 'pre-candidate';
      if (m.preVote !== isPre) return;
      if (isPre && m.voteGranted && m.term !== r.term + 1) return;
      r.votes.set(m.from, m.voteGranted);
      countVotes(r);
      return;
    }
    case 'Removed':
      // A leader of this term exists and says we are out.
      becomeFollower(r, m.term, m.from);
      noteRemoved(r, m);
      return;
    case 'AppendEntriesResponse':
    case 'InstallSnapshotResponse':
    case 'TimeoutNow':
      return;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

export function stepFollower(r: Raft, m: Exclude<Message, RequestVote>): void {
  switch (m.type) {
    case 'AppendEntries':
      r.electionElapsed = 0;
      r.leader = m.from;
      handleAppendEntries(r, m);
      return;
    case 'InstallSnapshot':
      r.electionElapsed = 0;
      r.leader = m.from;
      handleInstallSnapshot(r, m);
      return;
    case 'TimeoutNow':
      // Thesis §3.10: the leader chose us; campaign at once, skipping pre-vote and the lease.
      startElection(r, 'vote', true);
      return;
    case 'Removed':
      r.leader = m.from;
      noteRemoved(r, m);
      return;
    case 'RequestVoteResponse':
    case 'AppendEntriesResponse':
    case 'InstallSnapshotResponse':
      return;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

/** §5.1: "If a server receives a request with a stale term number, it rejects the request." */
export function answerStaleRequest(r: Raft, m: Message): void {
  switch (m.type) {
    case 'AppendEntries':
    case 'InstallSnapshot':
      // The answer carries our newer term, which makes a stale leader step down. It MUST NOT
      // echo the request's round (seq 0 acknowledges none): if the sender leads our newer
      // term by the time it arrives — say, restarted, with its round count back at 0 — it
      // would take the echo as an acknowledgement of its own round and confirm ReadIndex
      // reads and leases no majority ever answered (thesis §6.4, §6.4.1).
      send(r, appendResponse(r, m.from, false, 0, 0, 0, 0, 0));
      return;
    case 'RequestVote':
      send(r, { type: 'RequestVoteResponse', from: r.id, to: m.from, term: r.term, preVote: m.preVote, voteGranted: false });
      return;
    default:
      return;
  }
}

function handleAppendEntries(r: Raft, m: AppendEntries): void {
  if (m.leaderStable !== undefined && m.leaderStable > r.leaderStable) r.leaderStable = m.leaderStable;
  let prevLogIndex = m.prevLogIndex;
  let prevLogTerm = m.prevLogTerm;
  let entries = m.entries;
  if (prevLogIndex < r.commit) {
    // Everything up to our commitIndex is committed, hence in every later leader's log (§5.4):
    // skip what we already hold and check consistency at the commit point instead.
    const skip = r.commit - prevLogIndex;
    if (skip >= entries.length) {
      if (r.commit > r.leaderMatch) r.leaderMatch = r.commit;
      send(r, appendResponse(r, m.from, true, r.commit, 0, 0, 0, m.seq));
      return;
    }
    prevLogTerm = entries[skip - 1]!.term;
    prevLogIndex = r.commit;
    entries = entries.slice(skip);
  }
  const localTerm = r.log.termAt(prevLogIndex);
  if (localTerm !== prevLogTerm) {
    // §5.3: reject, with a hint that lets the leader skip a whole term at a time.
    const conflictTerm = localTerm ?? 0;
    const conflictIndex = localTerm === undefined ? r.log.lastIndex + 1 : r.log.firstIndexOfTerm(localTerm, prevLogIndex);
    send(r, appendResponse(r, m.from, false, 0, m.prevLogIndex, conflictTerm, conflictIndex, m.seq));
    return;
  }
  // §5.3: delete a conflicting entry and all that follow it, but never a matching prefix: a
  // stale, shorter AppendEntries must not undo what a later one appended.
  let i = 0;
  for (; i < entries.length; i++) {
    const e = entries[i]!;
    const t = r.log.termAt(e.index);
    if (t === undefined) break;
    if (t !== e.term) {
      if (e.index <= r.commit) {
        // Unreachable: step() drops an AppendEntries that disagrees with our committed prefix
        // (§5.4.3), and the skip above starts the entries after commitIndex. Should a bug make
        // it reachable, a message still only gets dropped: committed entries are never undone.
        r.countDrop('contradicts-committed');
        return;
      }
      truncateFrom(r, e.index);
      break;
    }
  }
  if (i < entries.length) {
    for (; i < entries.length; i++) {
      const e = entries[i]!;
      r.log.appendOne(e);
      if (e.type === 'config') noteConfigEntry(r, e);
    }
  }
  const lastNew = prevLogIndex + entries.length;
  // Log Matching (§5.3): up to lastNew our log is now the leader's, and stays so while it leads.
  if (lastNew > r.leaderMatch) r.leaderMatch = lastNew;
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
  const newCommit = Math.min(m.leaderCommit, lastNew);
  if (newCommit > r.commit) r.commit = newCommit;
  commitFromDurableCopies(r);
  send(r, appendResponse(r, m.from, true, lastNew, 0, 0, 0, m.seq));
}

function handleInstallSnapshot(r: Raft, m: InstallSnapshot): void {
  const meta = m.snapshot.meta;
  if (meta.index <= r.commit) {
    // Older than what we know is committed: nothing to do but say where we are.
    send(r, snapshotResponse(r, m.from, r.commit, m.seq));
    return;
  }
  if (r.log.termAt(meta.index) === meta.term) {
    // §7: we already hold the snapshot's last entry; keep the log that follows it.
    r.commit = meta.index;
    if (meta.index > r.leaderMatch) r.leaderMatch = meta.index;
    send(r, snapshotResponse(r, m.from, meta.index, m.seq));
    return;
  }
  // §7: discard the entire log and take the snapshot's state and configuration.
  r.log.restore(meta.index, meta.term);
  r.configs.restore(meta.config);
  r.commit = meta.index;
  r.applied = meta.index;
  r.leaderMatch = meta.index;
  r.snapshotToInstall = m.snapshot;
  send(r, snapshotResponse(r, m.from, meta.index, m.seq));
}

/**
 * Not in the paper; the same rule as the leader's (§5.4.2, Figure 8), counted by a follower.
 * An entry is committed once a majority stores it durably and it, or an entry after it, is of the
 * current leader's term: that is all Leader Completeness needs (§5.4.3). The leader counts
 * acknowledgements; a follower knows two copies for sure — its own, durable up to its stable
 * index, and the leader's, durable up to the `leaderStable` the leader announced — and both are
 * the same entries as far as its log is known to match the leader's (`leaderMatch`, Log
 * Matching). Where those two make a majority (3 voters, or fewer), the follower commits without
 * the leader's next message: a write it forwarded is answered one round trip sooner.
 *
 * Counted only under a simple configuration whose entry lies inside the matched prefix (the
 * leader's, then; a suffix past it may be a deposed leader's and change nothing), with the
 * leader a voter and ourselves counted only if a voter. An entry of an earlier term is never
 * committed by counting (Figure 8), as on the leader.
 */
export function commitFromDurableCopies(r: Raft): void {
  const leader = r.leader;
  if (r.currentRole !== 'follower' || leader === null) return;
  const leaderHas = Math.min(r.leaderStable, r.leaderMatch);
  if (leaderHas <= r.commit) return;
  const config = r.configuration;
  if (isJoint(config) || lastConfigIndex(r) > r.leaderMatch) return;
  const ownHas = Math.min(r.log.stableIndex, r.leaderMatch);
  const index = committedIndex(config, (id) => (id === leader ? leaderHas : id === r.id ? ownHas : 0));
  if (index <= r.commit || r.log.termAt(index) !== r.term) return;
  r.commit = index;
  r.countedCommit = index;
  r.followerCommits++;
}

function appendResponse(r: Raft, to: NodeId, success: boolean, matchIndex: number, rejectedIndex: number, conflictTerm: number, conflictIndex: number, seq: number): AppendEntriesResponse {
  return { type: 'AppendEntriesResponse', from: r.id, to, term: r.term, success, matchIndex, rejectedIndex, conflictTerm, conflictIndex, seq };
}

function snapshotResponse(r: Raft, to: NodeId, matchIndex: number, seq: number): InstallSnapshotResponse {
  return { type: 'InstallSnapshotResponse', from: r.id, to, term: r.term, matchIndex, seq };
}

function truncateFrom(r: Raft, index: number): void {
  r.log.truncateFrom(index);
  // A configuration takes effect when appended, so removing its entry reverts it (thesis §4.1).
  r.configs.truncateFrom(index);
}
