// The one spawner of the harness: a child process in its own process group (raftkv nodes, the
// CLI run to completion, the benchmark's etcd), its output appended to a log file and handed to
// callbacks. Signals go to the whole group, so they reach whatever the child started in turn.
// A child still running when this process exits is SIGKILLed by cleanup.ts's exit hook.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { trackChild, untrackChild } from './cleanup.js';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface GroupChildOptions {
  /** stdout and stderr are appended here as they come. @default not kept */
  readonly logFile?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly onStdout?: (text: string) => void;
  readonly onStderr?: (text: string) => void;
}

export class GroupChild {
  readonly process: ChildProcess;
  /** Settles once the process is gone and its output is read to the end. */
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | null = null;
  /** Why the process could not be started (ENOENT, EACCES), or null. */
  spawnError: Error | null = null;

  constructor(command: string, args: readonly string[], options: GroupChildOptions = {}) {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: options.env ?? process.env, ...(options.cwd !== undefined ? { cwd: options.cwd } : {}) });
    this.process = child;
    trackChild(this);
    const log = options.logFile;
    const output = (callback: ((text: string) => void) | undefined) => (text: string): void => {
      if (log !== undefined) appendFileSync(log, text);
      callback?.(text);
    };
    child.stdout.setEncoding('utf8').on('data', output(options.onStdout));
    child.stderr.setEncoding('utf8').on('data', output(options.onStderr));
    this.exited = new Promise((resolve) => {
      const settle = (info: ExitInfo): void => {
        if (this.exit !== null) return;
        this.exit = info;
        untrackChild(this);
        resolve(info);
      };
      child.once('close', (code, signal) => settle({ code, signal }));
      child.once('error', (err) => {
        // Only a failed spawn ends the child here; a failed kill leaves it running.
        if (child.pid !== undefined) return;
        this.spawnError = err;
        if (log !== undefined) appendFileSync(log, `spawn of ${command} failed: ${err.message}\n`);
        settle({ code: null, signal: null });
      });
    });
  }

  get isRunning(): boolean {
    return this.exit === null;
  }

  /** Sends `signal` to the child's whole process group; false when the child is gone. */
  signal(signal: NodeJS.Signals): boolean {
    const pid = this.process.pid;
    if (pid === undefined || !this.isRunning) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      try {
        return this.process.kill(signal);
      } catch {
        return false;
      }
    }
  }

  /** The exit, or null while the process still runs after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<ExitInfo | null> {
    if (this.exit !== null) return this.exit;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    try {
      return await Promise.race([this.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends `signal` and waits up to `graceMs` for the exit; past that, SIGKILL. Says whether the
   * SIGKILL was needed; rejects only when the process outlives SIGKILL by 5 s.
   */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<{ readonly exit: ExitInfo; readonly isForced: boolean }> {
    this.signal(signal);
    const exit = await this.waitExit(graceMs);
    if (exit !== null) return { exit, isForced: false };
    this.signal('SIGKILL');
    const killed = await this.waitExit(5000);
    if (killed === null) throw new Error(`pid ${this.process.pid} survived SIGKILL for 5 s`);
    return { exit: killed, isForced: true };
  }
}
