// The configuration in force (thesis §4.1): a server uses the latest configuration entry in its
// log, committed or not, so it takes effect when appended and is undone when truncated away. The
// leader keeps one Progress per member (learners included) in step with it.
//
// A server the configuration drops is not simply forgotten: the leader keeps replicating to it
// (without counting it in any quorum) until it holds the entry that dropped it and that entry is
// committed, then tells it with a `Removed` message, so it can stop instead of lingering. After a
// few notices, or a few election timeouts if it never catches up (it may be dead), the leader
// lets it go.
import { decodeConfiguration, isVoter, members } from './configuration.js';
import { Progress } from './progress.js';
import { send } from './outbox.js';
import type { Raft } from './raft.js';
import type { Configuration, Entry, NodeId, Removed } from './types.js';

/** A server the leader's configuration dropped at `configIndex`, still being replicated to. */
export interface Departure {
  readonly configIndex: number;
  /** Heartbeat rounds since it was dropped, and `Removed` notices sent. */
  rounds: number;
  notices: number;
}

/** Notices sent to a departed server, one per heartbeat round (a lost one is covered by the next). */
const DEPARTURE_NOTICES = 3;
/** Election timeouts a departing server has to catch up before the leader stops trying. */
const DEPARTURE_ELECTIONS = 3;

export function lastConfigIndex(r: Raft): number {
  return r.configs.latest?.index ?? r.log.snapshotIndex;
}

export function noteConfigEntry(r: Raft, e: Entry): void {
  if (e.type !== 'config') return;
  const config = decodeConfiguration(e.data);
  r.configs.add(e.index, config);
  if (r.currentRole === 'leader') syncProgresses(r);
}

export function configAt(r: Raft, index: number): Configuration {
  return r.configs.at(index);
}

/**
 * Whether this server may stand for election: a voter in the configuration in force, or in the
 * one before it while that newer entry is uncommitted. Without the second case a change can
 * wedge: a leader that appends C_new and reaches only the servers C_new drops leaves them with
 * the longest logs; they refuse every other candidate as less up to date (§5.4.1) and, no longer
 * voters in their own latest configuration, never stand themselves. Such a server is elected
 * under C_new's rules like anyone else (thesis §4.1), then steps down once C_new commits (§4.2.2).
 */
export function mayCampaign(r: Raft): boolean {
  if (isVoter(r.configuration, r.id)) return true;
  const latest = r.configs.latest;
  if (latest === undefined || latest.index <= r.commit) return false;
  return isVoter(configAt(r, latest.index - 1), r.id);
}

export function voterIds(r: Raft): NodeId[] {
  const ids = new Set<NodeId>([...r.configuration.voters, ...r.configuration.votersOutgoing]);
  return [...ids];
}

/** Keeps one Progress per member other than this server (learners included), and one per departing server. */
export function syncProgresses(r: Raft): void {
  const wanted = new Set(members(r.configuration));
  wanted.delete(r.id);
  for (const id of r.progresses.keys()) {
    if (!wanted.has(id) && !r.departing.has(id)) r.departing.set(id, { configIndex: lastConfigIndex(r), rounds: 0, notices: 0 });
  }
  for (const id of wanted) {
    r.departing.delete(id);
    if (!r.progresses.has(id)) {
      const pr = new Progress(id, r.log.lastIndex + 1, r.opts.maxInflightMessages, Math.min(r.opts.maxInflightBytes, r.opts.maxBytesPerMessage * r.opts.maxInflightMessages));
      pr.recentActive = true;
      r.progresses.set(id, pr);
    }
  }
}

/**
 * Once per heartbeat round on the leader: tells each departing server that holds the committed
 * entry dropping it, and lets it go after enough notices or once it has had long enough.
 */
export function tellDeparting(r: Raft): void {
  const maxRounds = Math.ceil((DEPARTURE_ELECTIONS * r.opts.electionTicks) / r.opts.heartbeatTicks);
  for (const [id, d] of r.departing) {
    d.rounds++;
    const pr = r.progresses.get(id);
    if (pr !== undefined && pr.matchIndex >= d.configIndex && r.commit >= d.configIndex) {
      send(r, { type: 'Removed', from: r.id, to: id, term: r.term, configIndex: d.configIndex });
      d.notices++;
    }
    if (pr === undefined || d.notices >= DEPARTURE_NOTICES || d.rounds >= maxRounds) {
      r.progresses.delete(id);
      r.departing.delete(id);
    }
  }
}

/**
 * A leader of our term says we are out. Believed unless our own log holds a newer configuration
 * that includes us (we were added back; the notice is older than that).
 */
export function noteRemoved(r: Raft, m: Removed): void {
  if (lastConfigIndex(r) > m.configIndex && members(r.configuration).includes(r.id)) return;
  r.removedNotice ??= { by: m.from, configIndex: m.configIndex };
}
