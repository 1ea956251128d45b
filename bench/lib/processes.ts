// Every process and temp dir a benchmark creates, owned in one place so that each way out (the
// end of the run, an error, Ctrl-C, SIGTERM, the run's time bound) kills the processes and
// removes the dirs. Children are started in their own process group so a kill reaches anything
// they start in turn.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SpawnOptions {
  /** stdout and stderr of the child are appended here. */
  readonly logPath: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>;
  readonly logPath: string;
}

export class Resources {
  private readonly children = new Set<Child>();
  private readonly dirs = new Set<string>();
  private hasReleased = false;

  constructor() {
    // A last resort: 'exit' handlers must be synchronous, so they only SIGKILL and rm.
    process.on('exit', () => this.releaseSync());
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.add(dir);
    return dir;
  }

  removeDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    this.dirs.delete(dir);
  }

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions): Child {
    const log = createWriteStream(options.logPath, { flags: 'a' });
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: options.env ?? process.env });
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    const exited = new Promise<number | string>((resolve) => {
      proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      proc.once('error', (err) => {
        log.write(`spawn failed: ${err.message}\n`);
        resolve('spawn-error');
      });
    });
    const child: Child = { name, process: proc, exited, logPath: options.logPath };
    this.children.add(child);
    void exited.then(() => {
      this.children.delete(child);
      log.end();
    });
    return child;
  }

  /** SIGTERM (a clean stop lets a node write its CPU profile), then SIGKILL after `graceMs`. */
  async stop(children: readonly Child[], graceMs: number): Promise<void> {
    for (const c of children) signalGroup(c.process, 'SIGTERM');
    const timer = setTimeout(() => {
      for (const c of children) signalGroup(c.process, 'SIGKILL');
    }, graceMs);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(timer);
  }

  async releaseAll(graceMs = 2000): Promise<void> {
    await this.stop([...this.children], graceMs);
    for (const dir of [...this.dirs]) this.removeDir(dir);
  }

  releaseSync(): void {
    if (this.hasReleased) return;
    this.hasReleased = true;
    for (const c of this.children) signalGroup(c.process, 'SIGKILL');
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    // Negative pid: the whole group (the child was spawned detached, so it leads its own).
    process.kill(-proc.pid, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** The last lines of each child's log, for an error message written before the logs are removed. */
export function tailLogs(children: readonly Child[], lines = 5): string {
  return children
    .map((c) => {
      let text = '';
      try {
        text = readFileSync(c.logPath, 'utf8');
      } catch {
        return `  ${c.name}: (no log)`;
      }
      const tail = text.trimEnd().split('\n').slice(-lines).join('\n    ');
      return `  ${c.name}:\n    ${tail === '' ? '(empty log)' : tail}`;
    })
    .join('\n');
}

/**
 * Runs a benchmark's `main` with one Resources, bounded in time: every way out (the end, an
 * error, Ctrl-C, SIGTERM, the time bound) stops every process and removes every temp dir
 * before the process exits with main's code (1 on error or time bound, 130/143 on signals).
 */
export function runBench(main: (res: Resources) => Promise<number>, timeoutSeconds: () => number): void {
  const res = new Resources();
  let isExiting = false;
  const exitAfterCleanup = (code: number, why: string | null): void => {
    if (isExiting) return;
    isExiting = true;
    if (why !== null) console.error(why);
    void res.releaseAll(2000).finally(() => process.exit(code));
  };
  process.once('SIGINT', () => exitAfterCleanup(130, '\ninterrupted: stopping every node and removing temp dirs'));
  process.once('SIGTERM', () => exitAfterCleanup(143, 'terminated: stopping every node and removing temp dirs'));
  const bound = timeoutSeconds();
  const watchdog = setTimeout(() => exitAfterCleanup(1, `bench: stopped at its time bound (${bound} s; --timeout raises it)`), bound * 1000);
  main(res).then(
    (code) => {
      clearTimeout(watchdog);
      exitAfterCleanup(code, null);
    },
    (err: unknown) => {
      clearTimeout(watchdog);
      exitAfterCleanup(1, `bench: ${err instanceof Error ? err.message : String(err)}`);
    },
  );
}
