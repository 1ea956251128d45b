// A full-cluster crash and restart, timed from outside (issue 11): every member SIGKILLed at
// once, then all started again with the same flags and data dirs. From the moment of the spawn,
// one writer per member sends a PUT over a fresh connection, again 20 ms after each failure,
// until one is acknowledged anywhere: the first acknowledged write. Beside it each member is
// polled every 20 ms for when it serves (its store loaded) and when it is ready (knows a leader).
import { performance } from 'node:perf_hooks';
import type { ScaleSystem } from './scale-systems.js';
import type { StartupPhase } from './raftkv-startup.js';

export interface MemberRestart {
  readonly member: string;
  /** ms from the spawn until the member served: raftkv /livez with starting=false; etcd a Status answer. NaN: never. */
  readonly upMs: number;
  /** ms until it was ready: raftkv /readyz 200; etcd a Status that names a leader. NaN: never. */
  readonly readyMs: number;
}

export interface RestartResult {
  /** ms the SIGKILLs took until every process was gone. */
  readonly killMs: number;
  /** ms from the spawn to the first acknowledged PUT; NaN if none came within the bound. */
  readonly firstAckMs: number;
  readonly firstAckMember: string | null;
  /** PUTs that failed before it. */
  readonly failedAttempts: number;
  readonly lastError: string | null;
  readonly members: readonly MemberRestart[];
  /** What the members' logs say about this start (raftkv). */
  readonly phases: readonly StartupPhase[];
}

const RETRY_MS = 20;
const ATTEMPT_TIMEOUT_MS = 2000;

export async function measureRestart(system: ScaleSystem, value: Uint8Array, timeoutMs: number): Promise<RestartResult> {
  const killStart = performance.now();
  await system.killAll();
  const killMs = performance.now() - killStart;

  const spawnedAtWallMs = Date.now();
  const t0 = performance.now();
  system.restartAll();
  const deadline = t0 + timeoutMs;
  const since = (): number => performance.now() - t0;
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, RETRY_MS));

  let firstAckMs = NaN;
  let firstAckMember: string | null = null;
  let failedAttempts = 0;
  let lastError: string | null = null;
  const writer = async (i: number): Promise<void> => {
    while (firstAckMember === null && performance.now() < deadline) {
      try {
        await system.probeWrite(i, value, ATTEMPT_TIMEOUT_MS);
        if (firstAckMember === null) {
          firstAckMs = since();
          firstAckMember = system.memberNames[i]!;
        }
        return;
      } catch (err) {
        failedAttempts++;
        lastError = `${system.memberNames[i]}: ${err instanceof Error ? err.message : String(err)}`;
        await pause();
      }
    }
  };
  const members = system.memberNames.map((member) => ({ member, upMs: NaN, readyMs: NaN }));
  const watcher = async (i: number): Promise<void> => {
    const m = members[i]!;
    while (Number.isNaN(m.readyMs) && performance.now() < deadline) {
      const state = await system.probeMember(i, 1000);
      if (state !== 'down' && Number.isNaN(m.upMs)) m.upMs = since();
      if (state === 'ready') m.readyMs = since();
      else await pause();
    }
  };
  await Promise.all([...system.memberNames.map((_, i) => writer(i)), ...system.memberNames.map((_, i) => watcher(i))]);
  return { killMs, firstAckMs, firstAckMember, failedAttempts, lastError, members, phases: system.startupPhases(spawnedAtWallMs) };
}
