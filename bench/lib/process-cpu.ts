// CPU time of the servers under test, read from /proc (Linux): to say what each operation cost
// the servers, whatever the client and the rest of the machine cost. Clock ticks are taken as
// 1/100 s, the USER_HZ of every Linux this runs on (getconf CLK_TCK).
import { pidsWithArgument } from './process-memory.js';
import { procStatFields } from '../../src/storage/dir-lock.js';

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds `pid` has used so far; null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  const fields = procStatFields(pid);
  if (fields === null) return null;
  // Fields 14 (utime) and 15 (stime) of proc(5), counted from the state (field 3) at index 0.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : null;
}

/**
 * A reader of the CPU seconds used so far by the processes started with one of `dataDirs` as an
 * argument (each member's --data-dir), summed; the pids are looked up once, on the first call.
 */
export function serverCpuReader(dataDirs: readonly string[]): () => number {
  let pids: number[] | null = null;
  return () => {
    pids ??= dataDirs.flatMap((d) => pidsWithArgument(d));
    return pids.reduce((sum, pid) => sum + (processCpuSeconds(pid) ?? 0), 0);
  };
}
