// One `raftkv serve` process slot: a fixed id, addresses, data dir and log file across restarts,
// run as the compiled CLI (dist/src/cli/main.js) in its own process group. It knows whether each
// exit was one the harness caused or expected (a kill, a stop, a removal) or a crash, and asks
// the node over HTTP for its status and its configuration.
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ConfigurationStatus, NodeStatus } from '../client/index.js';
import { memberEnv } from '../cli/member-env.js';
import { GroupChild, type ExitInfo } from './group-child.js';
import { exchange, parseMetrics, probe, type ClientSecurity } from './http.js';

/** The compiled CLI, next to this compiled file (dist…/src/harness/ → dist…/src/cli/). */
export const MAIN_JS = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * The environment for a child: ours without RAFTKV_* (a caller sets those explicitly) or
 * test-runner variables, with malloc on huge pages as raftkv's launchers start members
 * (cli/member-env.ts).
 */
export function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // RAFTKV_TRACE_DIR goes through: tracing a benchmark means tracing its nodes (docs/benchmarks.md).
  for (const [k, v] of Object.entries(process.env)) if ((!k.startsWith('RAFTKV_') || k === 'RAFTKV_TRACE_DIR') && !k.startsWith('NODE_TEST')) env[k] = v;
  return memberEnv({ ...env, ...extra });
}

export interface ProcessNodeOptions {
  /** The CA and token the probes present (an https node); null: plain http. @default null */
  readonly security?: ClientSecurity | null;
  /** The network namespace to run in (`ip netns exec`, src/faults/netns.ts); null: this one. @default null */
  readonly namespace?: string | null;
  /** Flags for node itself, before main.js (e.g. --cpu-prof). @default [] */
  readonly nodeFlags?: readonly string[];
  /** @default MAIN_JS */
  readonly mainJs?: string;
  /** HOST:PORT where the node serves the etcd v3 gRPC API (--etcd-addr); null: not served. @default null */
  readonly etcdAddr?: string | null;
}

export class ProcessNode {
  readonly url: string;
  readonly security: ClientSecurity | null;
  readonly namespace: string | null;
  /** `127.0.0.1:PORT` of the etcd v3 gRPC API (ProcessClusterOptions.etcdApi); null when not served. */
  readonly etcdAddr: string | null;
  /** Everything the current and earlier incarnations wrote to stderr. */
  stderr = '';
  lastExit: ExitInfo | null = null;
  /** Exits the harness neither caused nor expected (crashes), one line each. */
  readonly unexpectedExits: string[] = [];
  /** The `serve` arguments of the latest start; start() without arguments reuses them. */
  args: readonly string[] = [];
  private child: GroupChild | null = null;
  private isStoppedBySignal = false;
  private isSignalledToExit = false;
  private isExitExpected = false;
  private wasLastExitUnexpected = false;
  private command: readonly string[];

  constructor(
    readonly id: string,
    /** HOST:PORT, as the node advertises them. */
    readonly peerAddr: string,
    readonly clientAddr: string,
    readonly dataDir: string,
    /** stdout and stderr of every incarnation are appended here, and a line at each exit. */
    readonly logFile: string,
    options: ProcessNodeOptions = {},
  ) {
    this.security = options.security ?? null;
    this.namespace = options.namespace ?? null;
    this.etcdAddr = options.etcdAddr ?? null;
    this.url = `${this.security === null ? 'http' : 'https'}://${this.clientAddr}`;
    // `ip netns exec` execs node in place: the pid (and the process group) stay the node's.
    const wrapper = this.namespace === null ? [] : ['ip', 'netns', 'exec', this.namespace];
    this.command = [...wrapper, process.execPath, ...(options.nodeFlags ?? []), options.mainJs ?? MAIN_JS];
  }

  /**
   * Later starts run `mainJs` (another build's compiled CLI) instead: a benchmark alternates two
   * builds over one data dir. The running incarnation, if any, is not touched.
   */
  useMain(mainJs: string): void {
    this.command = [...this.command.slice(0, -1), mainJs];
  }

  get isRunning(): boolean {
    return this.child !== null;
  }

  /** SIGSTOPped by pause() and not yet resumed: alive, but answers nothing. */
  get isPaused(): boolean {
    return this.child !== null && this.isStoppedBySignal;
  }

  /** It exited although the harness neither stopped it nor expected it to go. */
  get hasCrashed(): boolean {
    return this.child === null && this.wasLastExitUnexpected;
  }

  /** expectExit() was called since the last start. */
  get isExpectingExit(): boolean {
    return this.isExitExpected;
  }

  start(args: readonly string[] = this.args, env: NodeJS.ProcessEnv = childEnv()): void {
    if (this.child !== null) throw new Error(`${this.id} is already running`);
    this.args = args;
    const child = new GroupChild(this.command[0]!, [...this.command.slice(1), ...args], { env, logFile: this.logFile, onStderr: (s) => (this.stderr += s) });
    this.child = child;
    this.isStoppedBySignal = false;
    this.isSignalledToExit = false;
    this.isExitExpected = false;
    void child.exited.then(({ code, signal }) => {
      // A node being removed stops by itself, cleanly, once told it is out.
      const isExpected = this.isSignalledToExit || (this.isExitExpected && code === 0);
      if (!isExpected) this.unexpectedExits.push(`${this.id} exited by itself: code=${code} signal=${signal}`);
      appendFileSync(this.logFile, `--- harness: ${this.id} exited code=${code} signal=${signal}\n`);
      if (this.child === child) {
        this.child = null;
        this.isStoppedBySignal = false;
        this.lastExit = { code, signal };
        this.wasLastExitUnexpected = !isExpected;
      }
    });
  }

  /**
   * Sends `signal` and waits (bounded) for the exit. A SIGTERM that does not end the process in
   * `timeoutMs` is an error, after a SIGKILL.
   */
  async stop(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 10_000): Promise<ExitInfo> {
    const child = this.child;
    if (child === null) throw new Error(`${this.id} is not running`);
    this.isSignalledToExit = true;
    // A stopped process only acts on SIGTERM once continued.
    if (signal === 'SIGTERM') this.resume();
    const { exit, isForced } = await child.stop(signal, timeoutMs);
    if (isForced) throw new Error(`${this.id} did not exit within ${timeoutMs} ms of ${signal}`);
    return exit;
  }

  /** SIGKILL and wait until the process is gone; nothing to do when it is not running. */
  async kill(): Promise<void> {
    if (this.child !== null) await this.stop('SIGKILL', 5000);
  }

  /**
   * SIGSTOP: the process freezes, its sockets stay open but nothing answers, as if a network
   * partition cut it off (loopback offers no per-link cut without network namespaces).
   */
  pause(): void {
    if (this.child === null || this.isStoppedBySignal) return;
    this.child.signal('SIGSTOP');
    this.isStoppedBySignal = true;
  }

  /** SIGCONT after pause(): the process carries on, with whatever messages queued meanwhile. */
  resume(): void {
    if (this.child === null || !this.isStoppedBySignal) return;
    this.child.signal('SIGCONT');
    this.isStoppedBySignal = false;
  }

  /** The node is being removed from the cluster: an exit of its own with code 0 is expected, not a crash. */
  expectExit(): void {
    this.isExitExpected = true;
  }

  /** Waits (bounded) for the process to exit on its own, which expectExit() makes expected. */
  async waitExit(timeoutMs: number): Promise<ExitInfo> {
    this.expectExit();
    const exit = this.child === null ? this.lastExit : await this.child.waitExit(timeoutMs);
    if (exit === null) throw new Error(`${this.id} did not exit within ${timeoutMs} ms (or never started)`);
    return exit;
  }

  /**
   * A node removed from the cluster stops by itself once told, with exit code 0 and one line on
   * stderr; waits (bounded) for that and checks both.
   */
  async waitRemovedExit(timeoutMs = 15_000): Promise<void> {
    const exit = await this.waitExit(timeoutMs);
    if (exit.code !== 0 || !this.stderr.includes(`${this.id} was removed from the cluster`)) {
      throw new Error(`${this.id} exited ${JSON.stringify(exit)} without saying it was removed; stderr: ${this.stderr.trim().slice(0, 400)}`);
    }
  }

  /** This node's own /v1/status, or null when it does not answer (or is not running, or paused). */
  async status(timeoutMs = 1000): Promise<NodeStatus | null> {
    return this.getJson<NodeStatus>('/v1/status', timeoutMs);
  }

  /** This node's own view of the configuration (GET /v1/configuration), or null when it does not answer. */
  async configuration(timeoutMs = 1000): Promise<ConfigurationStatus | null> {
    return this.getJson<ConfigurationStatus>('/v1/configuration', timeoutMs);
  }

  /** GET /metrics, parsed; throws when the node does not answer 200. */
  async metrics(timeoutMs = 5000): Promise<Map<string, number>> {
    const reply = await exchange(this.url, '/metrics', { timeoutMs, security: this.security });
    if (reply.status !== 200) throw new Error(`${this.id} /metrics answered ${reply.status}`);
    return parseMetrics(reply.body.toString('utf8'));
  }

  private async getJson<T>(path: string, timeoutMs: number): Promise<T | null> {
    if (this.child === null || this.isStoppedBySignal) return null;
    const reply = await probe(this.url, path, { timeoutMs, security: this.security });
    if (reply === null || reply.status !== 200) return null;
    try {
      return JSON.parse(reply.body.toString('utf8')) as T;
    } catch {
      return null;
    }
  }
}
