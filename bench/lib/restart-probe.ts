// A full-cluster crash and restart, timed from outside (issue 11): every member SIGKILLed at
// once, then all started again with the same flags and data dirs. From the moment of the spawn,
// every 25 ms a PUT goes to each member over a fresh connection, until one is acknowledged
// anywhere: the first acknowledged write. Beside it each member is asked every 25 ms whether it
// serves (its store loaded) and whether it is ready (knows a leader). Attempts overlap: one
// that hangs (etcd accepts connections before it serves them, so a call waits out its deadline)
// does not hold back the next, so an answer is seen within one interval of being possible.
import { performance } from 'node:perf_hooks';
import type { RestartArm, ScaleSystem } from './scale-systems.js';
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

const INTERVAL_MS = 25;
const ATTEMPT_TIMEOUT_MS = 2000;
/** In flight at once per loop; an interval is skipped while this many wait (2 s ÷ 25 ms = 80). */
const MAX_IN_FLIGHT = 100;

/** Starts `attempt` every INTERVAL_MS until `isDone()` or the deadline; resolves when the last one has. */
async function repeatUntil(deadline: number, isDone: () => boolean, attempt: () => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  while (!isDone() && performance.now() < deadline) {
    if (inFlight.size < MAX_IN_FLIGHT) {
      const p: Promise<void> = attempt().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
  }
  await Promise.all(inFlight);
}

/**
 * `afterKill`: run once every member is gone, before the spawn (not timed). `arm` (raftkv): the
 * members start from that build's compiled CLI, and with those variables added to their
 * environment.
 */
export async function measureRestart(system: ScaleSystem, value: Uint8Array, timeoutMs: number, afterKill?: () => void, arm: RestartArm = {}): Promise<RestartResult> {
  const killStart = performance.now();
  await system.killAll();
  const killMs = performance.now() - killStart;
  afterKill?.();

  const spawnedAtWallMs = Date.now();
  const t0 = performance.now();
  system.restartAll(arm);
  const deadline = t0 + timeoutMs;
  const since = (): number => performance.now() - t0;

  let firstAckMs = NaN;
  let firstAckMember: string | null = null;
  let failedAttempts = 0;
  let lastError: string | null = null;
  const writer = (i: number): Promise<void> => repeatUntil(deadline, () => firstAckMember !== null, async () => {
    try {
      await system.probeWrite(i, value, ATTEMPT_TIMEOUT_MS);
      if (firstAckMember === null) {
        firstAckMs = since();
        firstAckMember = system.memberNames[i]!;
      }
    } catch (err) {
      if (firstAckMember !== null) return;
      failedAttempts++;
      lastError = `${system.memberNames[i]}: ${err instanceof Error ? err.message : String(err)}`;
    }
  });
  const members = system.memberNames.map((member) => ({ member, upMs: NaN, readyMs: NaN }));
  const watcher = (i: number): Promise<void> => {
    const m = members[i]!;
    return repeatUntil(deadline, () => !Number.isNaN(m.readyMs), async () => {
      const state = await system.probeMember(i, ATTEMPT_TIMEOUT_MS);
      // Answers are handled in the order they come, so the first one to set a time has the earliest.
      if (state !== 'down' && Number.isNaN(m.upMs)) m.upMs = since();
      if (state === 'ready' && Number.isNaN(m.readyMs)) m.readyMs = since();
    });
  };
  await Promise.all([...system.memberNames.map((_, i) => writer(i)), ...system.memberNames.map((_, i) => watcher(i))]);
  return { killMs, firstAckMs, firstAckMember, failedAttempts, lastError, members, phases: system.startupPhases(spawnedAtWallMs) };
}
