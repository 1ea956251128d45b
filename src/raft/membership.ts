// The configuration in force (thesis §4.1): a server uses the latest configuration entry in its
// log, committed or not, so it takes effect when appended and is undone when truncated away. The
// leader keeps one Progress per member (learners included) in step with it.
import { decodeConfiguration, members } from './configuration.js';
import { Progress } from './progress.js';
import type { Raft } from './raft.js';
import type { Configuration, Entry, NodeId } from './types.js';

export function lastConfigIndex(r: Raft): number {
  return r.configEntries.at(-1)?.index ?? r.log.snapshotIndex;
}

export function noteConfigEntry(r: Raft, e: Entry): void {
  if (e.type !== 'config') return;
  const config = decodeConfiguration(e.data);
  r.configEntries.push({ index: e.index, config });
  r.configuration = config;
  if (r.currentRole === 'leader') syncProgresses(r);
}

export function configAt(r: Raft, index: number): Configuration {
  let config = r.snapshotConfiguration;
  for (const c of r.configEntries) {
    if (c.index > index) break;
    config = c.config;
  }
  return config;
}

export function voterIds(r: Raft): NodeId[] {
  const ids = new Set<NodeId>([...r.configuration.voters, ...r.configuration.votersOutgoing]);
  return [...ids];
}

/** Keeps one Progress per member other than this server (learners included). */
export function syncProgresses(r: Raft): void {
  const wanted = new Set(members(r.configuration));
  wanted.delete(r.id);
  for (const id of [...r.progresses.keys()]) if (!wanted.has(id)) r.progresses.delete(id);
  for (const id of wanted) {
    if (!r.progresses.has(id)) {
      const pr = new Progress(id, r.log.lastIndex + 1, r.opts.maxInflightMessages, r.opts.maxBytesPerMessage * r.opts.maxInflightMessages);
      pr.recentActive = true;
      r.progresses.set(id, pr);
    }
  }
}
