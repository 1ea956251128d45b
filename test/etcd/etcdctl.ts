// Runs Debian's `etcdctl` (3.4, API v3) the way a user would: as a child process against a list of
// endpoints, to completion (bounded) or in the background (watch, lock, elect) with its output
// followed line by line until the test has seen what it waits for. Every child is killed when the
// test ends, and at exit if a test forgot one. Without etcdctl the caller fails with a message
// saying what to install: a conformance test never skips.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pollUntil } from '../../src/harness/index.js';

/** The etcdctl binary: $ETCDCTL_BIN, else the first `etcdctl` on PATH, else /usr/bin/etcdctl. */
export function findEtcdctl(): string {
  const explicit = process.env['ETCDCTL_BIN'];
  const candidates = explicit !== undefined && explicit !== ''
    ? [explicit]
    : [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'etcdctl')), '/usr/bin/etcdctl'];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw new Error(`etcdctl is not installed (tried ${candidates.join(', ')}): install the Debian package etcd-client (apt-get install etcd-client) or set ETCDCTL_BIN`);
}

export interface EtcdctlOptions {
  /** Written to etcdctl's stdin, which is then closed (txn reads its script there). */
  readonly stdin?: string;
  /** The whole run, after which etcdctl is killed and the call rejects. @default 20_000 */
  readonly timeoutMs?: number;
}

export interface EtcdctlResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const live = new Set<ChildProcess>();
process.on('exit', stopEveryEtcdctl);
// Before the harness's own signal cleanup (targets.ts installs it after importing this file),
// which re-raises the signal once it is done.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, stopEveryEtcdctl);

/**
 * SIGKILLs every etcdctl still running. For the end of a test file: a test that timed out never
 * reached its own cleanup, and a watch left running would keep the file's process alive.
 */
export function stopEveryEtcdctl(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** The flags every run gets: the endpoints, and timeouts that fail fast rather than hang a test. */
function commonArgs(endpoints: readonly string[]): string[] {
  return [`--endpoints=${endpoints.join(',')}`, '--dial-timeout=3s', '--command-timeout=10s'];
}

function start(endpoints: readonly string[], args: readonly string[], withStdin: boolean): ChildProcess {
  const binary = findEtcdctl();
  // ETCDCTL_* of the caller's environment would change what etcdctl does; only ours count.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
  env['ETCDCTL_API'] = '3';
  const child = spawn(binary, [...commonArgs(endpoints), ...args], { stdio: [withStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true, env });
  live.add(child);
  child.once('close', () => live.delete(child));
  return child;
}

/** `etcdctl ARGS` to completion; rejects only when it cannot run or outlives `timeoutMs`. */
export function etcdctl(endpoints: readonly string[], args: readonly string[], options: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = start(endpoints, args, options.stdin !== undefined);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      reject(new Error(`etcdctl ${args.join(' ')} did not finish within ${timeoutMs} ms; stdout: ${stdout.slice(0, 400)} stderr: ${stderr.slice(0, 400)}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `etcdctl ARGS` that must succeed; its stdout. */
export async function etcdctlOk(endpoints: readonly string[], args: readonly string[], options: EtcdctlOptions = {}): Promise<string> {
  const r = await etcdctl(endpoints, args, options);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code ?? r.signal}: ${briefly(r.stderr) || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * What etcdctl said went wrong: its `Error:` lines, else the errors its client library logged
 * (JSON lines with an "error" field), else the tail of stderr.
 */
export function briefly(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => l.startsWith('Error: ') || l.startsWith('watch was canceled'));
  if (errors.length > 0) return [...new Set(errors)].join(' | ');
  const logged = lines.map((l) => /"error":"((?:[^"\\]|\\.)*)"/.exec(l)?.[1]).filter((e) => e !== undefined);
  if (logged.length > 0) return [...new Set(logged)].join(' | ');
  return stderr.trim().slice(-400);
}

/** `etcdctl -w json ARGS` that must succeed, its output parsed (64-bit numbers kept exact, as strings). */
export async function etcdctlJson<T>(endpoints: readonly string[], args: readonly string[], options: EtcdctlOptions = {}): Promise<T> {
  const out = await etcdctlOk(endpoints, ['-w', 'json', ...args], options);
  return parseJson<T>(out);
}

/**
 * etcdctl prints ids, revisions and terms as bare JSON numbers; ids are uint64 and lose their
 * low bits as doubles. Integers of 16 digits and more become strings before parsing; smaller
 * ones stay numbers. Strings in the text are skipped over, never rewritten.
 */
export function parseJson<T>(text: string): T {
  const exact = text.replace(/("(?:[^"\\]|\\.)*")|(-?\d{16,})(?![.eE\d])/g, (match, str: string | undefined) => (str !== undefined ? match : `"${match}"`));
  try {
    return JSON.parse(exact) as T;
  } catch (err) {
    throw new Error(`etcdctl printed no JSON (${(err as Error).message}): ${text.slice(0, 400)}`);
  }
}

/** etcdctl's base64 in -w json, as text. */
export const b64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

/** An etcdctl left running in the background: watch, lock, elect, a campaign. */
export class BackgroundEtcdctl {
  readonly process: ChildProcess;
  /** Everything printed on stdout so far. */
  stdout = '';
  stderr = '';
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(endpoints: readonly string[], readonly args: readonly string[]) {
    this.process = start(endpoints, args, false);
    this.process.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.process.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.closed = new Promise((resolve) => {
      this.process.once('close', (code, signal) => resolve({ code, signal }));
      this.process.once('error', () => resolve({ code: null, signal: null }));
    });
  }

  get lines(): string[] {
    return this.stdout.split('\n').filter((l) => l !== '');
  }

  get isRunning(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Waits (bounded) until stdout satisfies `isDone`; fails with what was printed. */
  async waitFor(what: string, isDone: (stdout: string) => boolean, timeoutMs = 15_000): Promise<void> {
    try {
      await pollUntil(what, timeoutMs, async () => (isDone(this.stdout) ? true : undefined), 20);
    } catch (err) {
      throw new Error(`${(err as Error).message}; etcdctl ${this.args.join(' ')} printed: ${JSON.stringify(this.stdout.slice(-800))}; stderr: ${JSON.stringify(briefly(this.stderr))}`);
    }
  }

  /** Waits (bounded) for the exit on its own. */
  async waitExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)));
    const exit = await Promise.race([this.closed, timedOut]);
    clearTimeout(timer);
    if (exit === null) throw new Error(`etcdctl ${this.args.join(' ')} did not exit within ${timeoutMs} ms; stdout: ${this.stdout.slice(-400)}`);
    return exit;
  }

  /** `signal` (SIGINT by default: what Ctrl-C sends; lock and elect release on it), then SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGINT', graceMs = 5000): Promise<void> {
    if (!this.isRunning) return;
    // SIGINT to etcdctl alone, not its group: `lock NAME CMD` must see it, not CMD.
    this.process.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((r) => (timer = setTimeout(() => r(null), graceMs)));
    const exit = await Promise.race([this.closed, timedOut]);
    clearTimeout(timer);
    if (exit === null) {
      killGroup(this.process, 'SIGKILL');
      await this.closed;
    }
  }
}

/** Background etcdctl runs of one test, all stopped by stopAll() in a finally. */
export class Background {
  private readonly runs: BackgroundEtcdctl[] = [];

  constructor(private readonly endpoints: readonly string[]) {}

  start(args: readonly string[]): BackgroundEtcdctl {
    const run = new BackgroundEtcdctl(this.endpoints, args);
    this.runs.push(run);
    return run;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.runs.map((r) => r.stop('SIGKILL', 0)));
  }
}
