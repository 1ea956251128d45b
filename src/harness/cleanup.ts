// What a harness run leaves behind when it ends early: every child still running is SIGKILLed
// and every temp dir removed when this process exits, whichever way it exits. The 'exit' hook
// MUST stay synchronous, so it only signals and removes; a clean stop (SIGTERM, a grace period)
// is the caller's job before that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GroupChild } from './group-child.js';

const liveChildren = new Set<GroupChild>();
const tempDirs = new Set<string>();
process.on('exit', cleanUpNow);

/** SIGKILLs every child still running and removes every temp dir. Safe to call more than once. */
function cleanUpNow(): void {
  for (const child of liveChildren) child.signal('SIGKILL');
  liveChildren.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function trackChild(child: GroupChild): void {
  liveChildren.add(child);
}

export function untrackChild(child: GroupChild): void {
  liveChildren.delete(child);
}

/** `dir` (and all in it) goes at exit unless removeTempDir() removed it first. */
export function removeAtExit(dir: string): void {
  tempDirs.add(dir);
}

/** A fresh directory `raftkv-<name>-XXXXXX` under os.tmpdir(), removed by removeTempDir() or at exit. */
export function makeTempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `raftkv-${name}-`));
  removeAtExit(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Ctrl-C, SIGTERM and SIGHUP clean up too, then end this process by the same signal. For test
 * files; a program with its own signal handling (the fault runner, the benchmarks) leaves this
 * out and ends with process.exit(), which runs the exit hook.
 */
export function cleanUpOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpNow();
      process.kill(process.pid, signal);
    });
  }
}
