// Every process and temp dir a benchmark creates, owned in one place so that each way out (the
// end of the run, an error, Ctrl-C, SIGTERM, the run's time bound) stops the processes and
// removes the dirs. Children are the harness's (src/harness/): each in its own process group, so
// a kill reaches anything it starts in turn, and SIGKILLed by the harness's exit hook if a way
// out was missed.
import { mkdtempSync, readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupChild, removeAtExit, removeTempDir } from '../../src/harness/index.js';

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
  private readonly children = new Map<Child, GroupChild>();
  private readonly dirs = new Set<string>();
  private readonly stops = new Set<() => Promise<void>>();

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    removeAtExit(dir);
    this.dirs.add(dir);
    return dir;
  }

  removeDir(dir: string): void {
    removeTempDir(dir);
    this.dirs.delete(dir);
  }

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions): Child {
    const group = new GroupChild(command, args, { logFile: options.logPath, env: options.env ?? process.env });
    const exited = group.exited.then((e) => (group.spawnError !== null ? 'spawn-error' : (e.code ?? e.signal ?? 'unknown')));
    const child: Child = { name, process: group.process, exited, logPath: options.logPath };
    this.children.set(child, group);
    void exited.then(() => this.children.delete(child));
    return child;
  }

  /** `stop` runs on releaseAll() (e.g. a cluster that owns its processes); the returned function withdraws it. */
  defer(stop: () => Promise<void>): () => void {
    this.stops.add(stop);
    return () => void this.stops.delete(stop);
  }

  /** SIGTERM (a clean stop lets a node write its CPU profile), then SIGKILL after `graceMs`. */
  async stop(children: readonly Child[], graceMs: number): Promise<void> {
    await Promise.all(children.map((c) => this.children.get(c)?.stop('SIGTERM', graceMs).catch(() => undefined)));
  }

  /** SIGKILL to every one of `children` at once (a crash, not a stop); resolves once all are gone. */
  async kill(children: readonly Child[]): Promise<void> {
    await Promise.all(children.map((c) => this.children.get(c)?.stop('SIGKILL', 0).catch(() => undefined)));
  }

  async releaseAll(graceMs = 2000): Promise<void> {
    await Promise.all([this.stop([...this.children.keys()], graceMs), ...[...this.stops].map((stop) => stop().catch(() => undefined))]);
    for (const dir of [...this.dirs]) this.removeDir(dir);
  }
}

/** The last lines of each log, for an error message written before the logs are removed. */
export function tailLogs(children: readonly { readonly name: string; readonly logPath: string }[], lines = 5): string {
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
