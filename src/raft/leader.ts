// The leader step function: answers to AppendEntries and InstallSnapshot and the nextIndex back-off
// (§5.3), commitment (§5.4.2, Figure 8), CheckQuorum (thesis §6.2), leadership transfer (thesis
// §3.10) and carrying joint consensus to its end (thesis §4.3).
import { leaveJoint } from './confchange.js';
import { encodeConfiguration, isJoint, isVoter, members } from './configuration.js';
import { lastConfigIndex, noteConfigEntry, tellDeparting } from './membership.js';
import type { Progress } from './progress.js';
import { committedIndex, hasQuorum } from './quorum.js';
import { send } from './outbox.js';
import type { Raft } from './raft.js';
import { broadcastAppend, broadcastHeartbeat, promoteDeferredReads, releaseConfirmedReads, sendAppend, startRound } from './replication.js';
import { afterLeaderAppend, becomeFollower } from './roles.js';
import type { AppendEntriesResponse, Configuration, Entry, InstallSnapshotResponse, Message, NodeId, RequestVote } from './types.js';

/** Election timeouts to wait for an InstallSnapshot's answer before sending it again. */
const SNAPSHOT_TIMEOUT_ELECTIONS = 5;

export function stepLeader(r: Raft, m: Exclude<Message, RequestVote>): void {
  switch (m.type) {
    case 'AppendEntriesResponse':
      handleAppendResponse(r, m);
      return;
    case 'InstallSnapshotResponse':
      handleSnapshotResponse(r, m);
      return;
    case 'AppendEntries':
    case 'InstallSnapshot':
    case 'RequestVoteResponse':
    case 'TimeoutNow':
    case 'Removed':
      return;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

export function tickLeader(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.transferee !== null && ++r.transferElapsed >= r.opts.electionTicks) {
    // Thesis §3.10: the target did not win within an election timeout; resume as leader,
    // and finish a joint configuration whose C_new waited for the transfer.
    r.transferee = null;
    if (isJoint(r.configuration) && r.commit >= lastConfigIndex(r)) afterCommitAdvanced(r);
  }
  if (r.electionElapsed >= r.opts.electionTicks) {
    r.electionElapsed = 0;
    if (r.opts.checkQuorum) {
      // Thesis §6.2: a leader that cannot hear a majority steps down, so clients go elsewhere.
      const active = hasQuorum(r.configuration, (id) => id === r.id || r.progresses.get(id)?.recentActive === true);
      for (const pr of r.progresses.values()) pr.recentActive = false;
      if (!active) {
        becomeFollower(r, r.term, null);
        return;
      }
    }
  }
  for (const pr of r.progresses.values()) {
    if (pr.state === 'snapshot' && ++pr.snapshotTicks > SNAPSHOT_TIMEOUT_ELECTIONS * r.opts.electionTicks) {
      pr.pendingSnapshot = 0;
      pr.becomeProbe();
    }
  }
  if (r.heartbeatElapsed >= r.opts.heartbeatTicks) {
    r.heartbeatElapsed = 0;
    startRound(r);
    broadcastHeartbeat(r);
    tellDeparting(r);
  }
}

/**
 * A follower answered: it is active (CheckQuorum, thesis §6.2), and its answer to round `seq`
 * confirms this leadership for the reads waiting on that round (thesis §6.4).
 */
function heardFrom(r: Raft, from: NodeId, seq: number): Progress | undefined {
  const pr = r.progresses.get(from);
  if (pr === undefined) return undefined;
  pr.recentActive = true;
  if (seq > pr.ackedSeq) {
    pr.ackedSeq = seq;
    releaseConfirmedReads(r);
  }
  return pr;
}

function handleAppendResponse(r: Raft, m: AppendEntriesResponse): void {
  const pr = heardFrom(r, m.from, m.seq);
  if (pr === undefined) return;
  if (!m.success) {
    handleRejection(r, pr, m);
    return;
  }
  // An answer that tells nothing new (a duplicate, or one overtaken) sends nothing: in probe
  // state the probe it did not answer is still out, and a heartbeat resends a lost one.
  if (!pr.maybeUpdate(m.matchIndex)) return;
  if (pr.state === 'probe') pr.becomeReplicate();
  else if (pr.state === 'snapshot' && pr.matchIndex >= pr.pendingSnapshot) pr.becomeProbe();
  else if (pr.state === 'replicate') pr.inflights.freeUpTo(pr.matchIndex);
  if (m.from === r.transferee && pr.matchIndex === r.log.lastIndex) sendTimeoutNow(r, m.from);
  if (maybeCommit(r)) afterCommitAdvanced(r);
  else sendAppend(r, pr, false);
}

function handleRejection(r: Raft, pr: Progress, m: AppendEntriesResponse): void {
  // A rejection of something at or below the known match point, or of a probe we no longer
  // wait for, is stale (reordered or duplicated) and says nothing new.
  if (m.rejectedIndex <= pr.matchIndex) return;
  if (pr.state === 'probe' && m.rejectedIndex !== pr.nextIndex - 1) return;
  if (pr.state === 'snapshot') return;
  // §5.3 optimisation: if we hold entries of the follower's conflicting term, resume after our
  // last one of that term; otherwise skip the follower's whole term.
  let next = m.conflictIndex;
  if (m.conflictTerm > 0) {
    const last = r.log.lastIndexOfTerm(m.conflictTerm, m.rejectedIndex);
    if (last > 0) next = last + 1;
  }
  next = Math.max(Math.min(next, m.rejectedIndex), pr.matchIndex + 1);
  pr.becomeProbe();
  pr.nextIndex = next;
  sendAppend(r, pr, false);
}

function handleSnapshotResponse(r: Raft, m: InstallSnapshotResponse): void {
  const pr = heardFrom(r, m.from, m.seq);
  if (pr === undefined) return;
  pr.maybeUpdate(m.matchIndex);
  if (pr.state === 'snapshot') pr.becomeProbe();
  if (maybeCommit(r)) afterCommitAdvanced(r);
  else sendAppend(r, pr, false);
}

/** Figure 2 / §5.4.2: commit the highest index a majority stores, if it is of our term. */
export function maybeCommit(r: Raft): boolean {
  const index = committedIndex(r.configuration, (id) => (id === r.id ? r.log.stableIndex : r.progresses.get(id)?.matchIndex ?? 0));
  // Figure 8: an entry of an earlier term is never committed by counting replicas; it is
  // committed indirectly once an entry of the current term above it is.
  if (index <= r.commit || r.log.termAt(index) !== r.term) return false;
  const firstInTerm = r.log.termAt(r.commit) !== r.term;
  r.commit = index;
  if (firstInTerm) promoteDeferredReads(r);
  return true;
}

/** Tells followers the new commit point and carries joint consensus forward (thesis §4.3). */
export function afterCommitAdvanced(r: Raft): void {
  const configIndex = lastConfigIndex(r);
  if (r.commit >= configIndex) {
    if (isJoint(r.configuration)) {
      // C_old,new is committed: now C_new alone. Not during a transfer (thesis §3.10: the
      // leader appends nothing then, or the target's log falls behind and it cannot win);
      // the new leader, or this one when the transfer lapses, appends C_new.
      if (r.transferee === null) {
        appendConfig(r, leaveJoint(r.configuration));
        return;
      }
    }
    if (!isVoter(r.configuration, r.id)) {
      // A leader outside C_new manages the change to its end, then steps down; if it is not even
      // a learner there, it is out of the cluster.
      broadcastAppend(r);
      becomeFollower(r, r.term, null);
      if (!members(r.configuration).includes(r.id)) r.removedNotice ??= { by: r.id, configIndex };
      return;
    }
  }
  broadcastAppend(r);
}

export function appendConfig(r: Raft, config: Configuration): number {
  const entry: Entry = { index: r.log.lastIndex + 1, term: r.term, type: 'config', data: encodeConfiguration(config) };
  r.log.appendOne(entry);
  noteConfigEntry(r, entry);
  r.pendingConfigIndex = entry.index;
  afterLeaderAppend(r);
  return entry.index;
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  send(r, { type: 'TimeoutNow', from: r.id, to, term: r.term });
}
