// The follower and candidate step functions: the AppendEntries receiver of Figure 2 (§5.3), the
// InstallSnapshot receiver (§7), answers to stale requests (§5.1), and a candidate's vote tally.
import { countVotes, startElection } from './election.js';
import { noteConfigEntry, noteRemoved } from './membership.js';
import { send } from './outbox.js';
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
  let prevLogIndex = m.prevLogIndex;
  let prevLogTerm = m.prevLogTerm;
  let entries = m.entries;
  if (prevLogIndex < r.commit) {
    // Everything up to our commitIndex is committed, hence in every later leader's log (§5.4):
    // skip what we already hold and check consistency at the commit point instead.
    const skip = r.commit - prevLogIndex;
    if (skip >= entries.length) {
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
        r.countDrop('invalid');
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
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
  const newCommit = Math.min(m.leaderCommit, lastNew);
  if (newCommit > r.commit) r.commit = newCommit;
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
    send(r, snapshotResponse(r, m.from, meta.index, m.seq));
    return;
  }
  // §7: discard the entire log and take the snapshot's state and configuration.
  r.log.restore(meta.index, meta.term);
  r.configs.restore(meta.config);
  r.commit = meta.index;
  r.applied = meta.index;
  r.snapshotToInstall = m.snapshot;
  send(r, snapshotResponse(r, m.from, meta.index, m.seq));
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
