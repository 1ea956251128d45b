// What a raftkv node's own log says about its latest start (the scale benchmark's restart): the
// JSON lines (src/server/logger.ts, --log-level info) after the harness's last exit marker, as
// milliseconds after the moment the bench spawned it. The order of a start
// (src/server/node-server.ts): the peer port is bound ('transport listening'), then the client
// port, then the WAL and the snapshot file are read and checked and the core starts on the log
// ('core started': it answers votes and appends from then on), then the snapshot is decoded into
// the store beside it ('state machine loaded'), and 'serving' follows; the node takes roles
// whenever its elections say (during the load, too); the first 'role changed' to leader anywhere
// ends the election.
import { readFileSync } from 'node:fs';

/** A named moment of a start, in ms after the spawn. */
export interface StartupPhase {
  readonly member: string;
  /** `listening`, `wal`, `storage`, `core`, `loaded`, `serving`, or `follower`/`pre-candidate`/`candidate`/`leader` for the first time in that role. */
  readonly phase: string;
  readonly ms: number;
  /** What the line adds, if anything: at `core`, the log the state machine will replay after its snapshot (`tail N`). */
  readonly detail?: string;
  /** CPU time the process had used by then (user and system, all threads), where the line says (`core`, `serving`, `replayed`). */
  readonly cpuMs?: number;
}

const EXIT_MARKER = '--- harness:';

/** The phases of `member`'s latest start, from its log file (stdout and stderr of every incarnation). */
export function startupPhases(member: string, logFile: string, spawnedAtWallMs: number): StartupPhase[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  let from = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.startsWith(EXIT_MARKER)) {
      from = i + 1;
      break;
    }
  }
  const phases: StartupPhase[] = [];
  const seen = new Set<string>();
  // `cpuMs`: what the line says the process had used (only 'core started', 'serving', 'replayed' say).
  const add = (phase: string, time: unknown, detail?: string, cpuMs?: unknown): void => {
    const at = typeof time === 'string' ? Date.parse(time) : NaN;
    if (seen.has(phase) || !Number.isFinite(at)) return;
    seen.add(phase);
    phases.push({ member, phase, ms: at - spawnedAtWallMs, ...(detail !== undefined ? { detail } : {}), ...(typeof cpuMs === 'number' && Number.isFinite(cpuMs) ? { cpuMs } : {}) });
  };
  for (const line of lines.slice(from)) {
    if (!line.startsWith('{')) continue;
    let entry: { time?: unknown; msg?: unknown; role?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const { cpuMs } = entry as { cpuMs?: unknown };
    if (entry.msg === 'transport listening') add('listening', entry.time);
    else if (entry.msg === 'storage opened') {
      // The snapshot file's reads begin with the WAL's; `snapshotMs` is what was left of them
      // once the WAL was done: 'wal' is that moment.
      const { snapshotMs } = entry as { snapshotMs?: unknown };
      if (typeof snapshotMs === 'number' && typeof entry.time === 'string') add('wal', new Date(Date.parse(entry.time) - snapshotMs).toISOString());
      add('storage', entry.time);
    } else if (entry.msg === 'core started') {
      const { snapshotIndex, commitIndex } = entry as { snapshotIndex?: unknown; commitIndex?: unknown };
      add('core', entry.time, typeof snapshotIndex === 'number' && typeof commitIndex === 'number' ? `tail ${(commitIndex - snapshotIndex).toLocaleString('en-US')}` : undefined, cpuMs);
    }
    else if (entry.msg === 'state machine loaded') add('loaded', entry.time);
    else if (entry.msg === 'serving') add('serving', entry.time, undefined, cpuMs);
    else if (entry.msg === 'replayed') add('replayed', entry.time, undefined, cpuMs);
    else if (entry.msg === 'role changed' && typeof entry.role === 'string') add(entry.role, entry.time);
  }
  return phases;
}
