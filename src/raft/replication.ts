// What the leader sends (§5.3): AppendEntries within the flow-control window of each Progress,
// InstallSnapshot when the entries are compacted away (§7), heartbeats (§5.2), and the heartbeat
// rounds that confirm ReadIndex reads and leases (thesis §6.4, §6.4.1).
import { EMPTY_DATA, entryBytes } from './log.js';
import type { Progress } from './progress.js';
import { isJoint } from './configuration.js';
import { hasQuorum } from './quorum.js';
import { send } from './outbox.js';
import type { Raft } from './raft.js';
import { EMPTY_ENTRIES } from './read-index.js';
import type { AppendEntries, InstallSnapshot, SnapshotMeta } from './types.js';

/** Heartbeat rounds a replicating follower may go without progress before we re-probe it. */
const STALL_HEARTBEATS = 3;
/** Recent heartbeat rounds whose start tick is kept, for leases (thesis §6.4.1). */
export const ROUND_HISTORY = 256;

export function broadcastAppend(r: Raft): void {
  for (const pr of r.progresses.values()) sendAppend(r, pr, true);
}

/**
 * Heartbeats are empty AppendEntries (§5.2) anchored at the follower's match point, which its
 * log is known to hold, so they never conflict; they carry the round number for ReadIndex.
 */
export function broadcastHeartbeat(r: Raft): void {
  for (const pr of r.progresses.values()) {
    if (pr.state === 'probe') {
      // A probe answers for the heartbeat too, and replaces one that may have been lost.
      pr.probeSent = false;
      sendAppend(r, pr, true);
      continue;
    }
    if (pr.state === 'replicate') {
      if (pr.inflights.count > 0 && pr.matchIndex === pr.matchAtLastHeartbeat) {
        // No progress for several rounds with messages outstanding: some were lost; re-probe.
        if (++pr.stalledHeartbeats >= STALL_HEARTBEATS) {
          pr.becomeProbe();
          sendAppend(r, pr, true);
          continue;
        }
      } else {
        pr.stalledHeartbeats = 0;
      }
      pr.matchAtLastHeartbeat = pr.matchIndex;
    }
    const term = r.log.termAt(pr.matchIndex);
    const prevLogIndex = term === undefined ? 0 : pr.matchIndex;
    const hb: AppendEntries = {
      type: 'AppendEntries', from: r.id, to: pr.id, term: r.term,
      prevLogIndex, prevLogTerm: term ?? 0, entries: EMPTY_ENTRIES,
      leaderCommit: Math.min(r.commit, prevLogIndex), seq: r.seq, leaderStable: announce(r),
    };
    send(r, hb);
  }
}

/**
 * Sends `pr` what it lacks from nextIndex (§5.3): one AppendEntries in probe state; in replicate
 * state, messages of at most maxBytesPerMessage until the in-flight window is full or nothing is
 * left, so a follower far behind is caught up a window per round trip, not a message.
 */
export function sendAppend(r: Raft, pr: Progress, sendIfEmpty: boolean): void {
  sendOneAppend(r, pr, sendIfEmpty);
  while (pr.state === 'replicate' && !pr.isPaused() && pr.nextIndex <= r.log.lastIndex) sendOneAppend(r, pr, false);
}

function sendOneAppend(r: Raft, pr: Progress, sendIfEmpty: boolean): void {
  if (pr.isPaused()) return;
  const prevLogIndex = pr.nextIndex - 1;
  const prevLogTerm = r.log.termAt(prevLogIndex);
  if (prevLogTerm === undefined) {
    sendSnapshot(r, pr);
    return;
  }
  const lastIndex = r.log.lastIndex;
  const entries = pr.nextIndex <= lastIndex ? r.log.slice(pr.nextIndex, lastIndex + 1, r.opts.maxBytesPerMessage) : EMPTY_ENTRIES;
  if (entries.length === 0 && !sendIfEmpty) return;
  const ae: AppendEntries = {
    type: 'AppendEntries', from: r.id, to: pr.id, term: r.term,
    prevLogIndex, prevLogTerm, entries, leaderCommit: r.commit, seq: r.seq, leaderStable: announce(r),
  };
  send(r, ae);
  if (pr.state === 'replicate') {
    if (entries.length > 0) {
      let bytes = 0;
      for (let i = 0; i < entries.length; i++) bytes += entryBytes(entries[i]!);
      const last = entries[entries.length - 1]!.index;
      pr.nextIndex = last + 1;
      pr.inflights.add(last, bytes);
    }
  } else {
    pr.probeSent = true;
  }
}

/**
 * The durable index a leader tells its followers (AppendEntries.leaderStable): its own stable
 * index, or 0 while a configuration change is pending. A follower counts it only under a simple
 * configuration inside the prefix it shares with us (follower.ts); announcing nothing while ours
 * may be changing keeps every count to a configuration both sides hold committed.
 */
export function stableToAnnounce(r: Raft): number {
  return isJoint(r.configuration) || r.pendingConfigIndex > r.commit ? 0 : r.log.stableIndex;
}

/**
 * stableToAnnounce, noted as announced (Raft.stableSentMax) where a follower can count with it:
 * where the leader's copy and one follower's are a majority (three voters or fewer; an
 * announcement is 0 under a joint configuration).
 */
function announce(r: Raft): number {
  const stable = stableToAnnounce(r);
  if (stable > r.stableSentMax && r.configuration.voters.length <= 3) r.stableSentMax = stable;
  return stable;
}

/**
 * Thesis §6.4 with §5.4.2 counted by followers: the index a read must wait for. The paper's read
 * index is the leader's commitIndex, which covers every write answered so far because only the
 * leader learns of commits first. Here a follower learns of some first: it counts its own
 * durable copy with the leader's announced one and answers the write it forwarded, before its
 * acknowledgement reaches the leader. Every such commit lies at or below a `leaderStable` this
 * leader sent, so the read point is the larger of the two. Waiting for it costs a read at most
 * the commit of entries already durable here.
 */
export function readPoint(r: Raft): number {
  return Math.max(r.commit, r.stableSentMax);
}

function sendSnapshot(r: Raft, pr: Progress): void {
  const meta: SnapshotMeta = { index: r.log.snapshotIndex, term: r.log.snapshotTerm, config: r.configs.atSnapshot };
  // The core never holds snapshot bytes: the runtime attaches its newest saved snapshot.
  const msg: InstallSnapshot = {
    type: 'InstallSnapshot', from: r.id, to: pr.id, term: r.term,
    snapshot: { meta, data: EMPTY_DATA }, seq: r.seq,
  };
  send(r, msg);
  pr.becomeSnapshot(meta.index);
}

/** Begins a new heartbeat round; its start tick bounds the lease it can confirm. */
export function startRound(r: Raft): void {
  r.seq++;
  r.roundStartTick[r.seq % ROUND_HISTORY] = r.ticks;
}

export function releaseConfirmedReads(r: Raft): void {
  r.reads.release(
    (seq) => hasQuorum(r.configuration, (id) => id === r.id || (r.progresses.get(id)?.ackedSeq ?? 0) >= seq),
    r.readStates,
  );
}

export function promoteDeferredReads(r: Raft): void {
  if (!r.reads.hasDeferred()) return;
  startRound(r);
  r.reads.promoteDeferred(readPoint(r), r.seq);
  broadcastHeartbeat(r);
  releaseConfirmedReads(r);
}
