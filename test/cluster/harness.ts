// Process-level test harness: real `raftkv serve` processes (the compiled dist main.js) on
// 127.0.0.1 with free ports, data dirs under os.tmpdir(), bounded waits for a leader, and
// kill -9 / SIGTERM / restart. Every child is killed and every directory removed by destroy(),
// and again by an exit hook, so a failing or interrupted test leaves nothing running.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http, parseMetrics, tryHttp, type StatusJson } from './http.js';

/** The compiled entry point, found next to this compiled file (dist-X/test/cluster/ → dist-X/src/cli/). */
export const MAIN_JS = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const liveChildren = new Set<ChildProcess>();
const tempRoots = new Set<string>();

function emergencyCleanup(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
  for (const dir of tempRoots) rmSync(dir, { recursive: true, force: true });
  tempRoots.clear();
}
process.on('exit', emergencyCleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    emergencyCleanup();
    process.kill(process.pid, signal);
  });
}

/** A fresh directory under os.tmpdir(), removed by removeTempDir() or at exit. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `raftkv-${prefix}-`));
  tempRoots.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempRoots.delete(dir);
}

/** `n` distinct free TCP ports: all bound to port 0 at once (so no duplicates), then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** The environment for a child: ours without RAFTKV_* (a test sets those explicitly) or test-runner variables. */
export function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RAFTKV_') && !k.startsWith('NODE_TEST')) env[k] = v;
  return { ...env, ...extra };
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunResult extends ExitInfo {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `main.js args` to completion (bounded) and returns its exit and output. */
export function runMain(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN_JS, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? childEnv(), ...(options.cwd ? { cwd: options.cwd } : {}) });
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      if (signal === 'SIGKILL') reject(new Error(`raftkv ${args.join(' ')} did not finish within ${options.timeoutMs ?? 15_000} ms; stderr: ${stderr}`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

/** One `raftkv serve` process slot: fixed id, ports and data dir across restarts. */
export class TestNode {
  readonly url: string;
  /** Everything the current and earlier incarnations wrote to stderr. */
  stderr = '';
  lastExit: ExitInfo | null = null;
  private child: ChildProcess | null = null;
  private exited: Promise<ExitInfo> | null = null;
  private isStopRequested = false;

  constructor(
    readonly id: string,
    readonly peerAddr: string,
    readonly clientAddr: string,
    readonly dataDir: string,
    /** Where stdout (JSON logs) of every incarnation is appended. */
    readonly logFile: string,
  ) {
    this.url = `http://${clientAddr}`;
  }

  get isRunning(): boolean {
    return this.child !== null;
  }

  /** It exited although the test did not stop it. */
  get hasCrashed(): boolean {
    return this.child === null && this.lastExit !== null && !this.isStopRequested;
  }

  start(args: readonly string[], env: NodeJS.ProcessEnv = childEnv()): void {
    if (this.child !== null) throw new Error(`${this.id} is already running`);
    const child = spawn(process.execPath, [MAIN_JS, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    liveChildren.add(child);
    this.child = child;
    this.isStopRequested = false;
    child.stdout!.on('data', (chunk: Buffer) => appendFileSync(this.logFile, chunk));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        if (this.child === child) this.child = null;
        this.lastExit = { code, signal };
        resolve({ code, signal });
      });
    });
  }

  /** Sends `signal` and waits (bounded) for the exit; a SIGTERM that hangs is an error after SIGKILL. */
  async stop(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 10_000): Promise<ExitInfo> {
    const child = this.child;
    const exited = this.exited;
    if (child === null || exited === null) throw new Error(`${this.id} is not running`);
    this.isStopRequested = true;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const result = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${this.id} did not exit within ${timeoutMs} ms of ${signal}`);
    }
    return result;
  }

  /** Waits (bounded) for the process to exit on its own. */
  async waitExit(timeoutMs: number): Promise<ExitInfo> {
    const exited = this.exited;
    if (exited === null) throw new Error(`${this.id} was never started`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const result = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (result === null) throw new Error(`${this.id} did not exit within ${timeoutMs} ms`);
    return result;
  }

  /** This node's own /v1/status, or null when it does not answer. */
  async status(timeoutMs = 1000): Promise<StatusJson | null> {
    const reply = await tryHttp(this.url, '/v1/status', { timeoutMs });
    return reply !== null && reply.status === 200 ? reply.json<StatusJson>() : null;
  }

  async metrics(): Promise<Map<string, number>> {
    const reply = await http(this.url, '/metrics');
    if (reply.status !== 200) throw new Error(`${this.id} /metrics answered ${reply.status}`);
    return parseMetrics(reply.text);
  }
}

export interface ClusterOptions {
  readonly size: number;
  /** @default 50 */
  readonly heartbeatMs?: number;
  /** @default 300 */
  readonly electionMs?: number;
  /** More `serve` flags for every node. */
  readonly extraArgs?: readonly string[];
  /** Names the temp directory. @default 'cluster' */
  readonly name?: string;
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export class TestCluster {
  readonly electionMs: number;
  readonly heartbeatMs: number;

  private constructor(
    readonly root: string,
    readonly nodes: readonly TestNode[],
    readonly initialCluster: string,
    private readonly extraArgs: readonly string[],
    timing: { heartbeatMs: number; electionMs: number },
  ) {
    this.heartbeatMs = timing.heartbeatMs;
    this.electionMs = timing.electionMs;
  }

  /** Starts `size` nodes and waits until a leader is elected and every node knows every address. */
  static async start(options: ClusterOptions): Promise<TestCluster> {
    const root = makeTempDir(options.name ?? 'cluster');
    const ports = await freePorts(options.size * 2);
    const nodes = Array.from({ length: options.size }, (_, i) => {
      const id = `n${i + 1}`;
      return new TestNode(id, `127.0.0.1:${ports[2 * i]}`, `127.0.0.1:${ports[2 * i + 1]}`, join(root, id), join(root, `${id}.log`));
    });
    const initialCluster = nodes.map((n) => `${n.id}=${n.peerAddr}`).join(',');
    const cluster = new TestCluster(root, nodes, initialCluster, options.extraArgs ?? [], {
      heartbeatMs: options.heartbeatMs ?? 50,
      electionMs: options.electionMs ?? 300,
    });
    try {
      for (const node of nodes) cluster.startNode(node);
      await cluster.waitForReady(15_000);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** The `serve` flags of `node`, with `extra` appended (later flags win). */
  serveArgs(node: TestNode, extra: readonly string[] = []): string[] {
    return [
      'serve', '--id', node.id, '--data-dir', node.dataDir, '--peer-addr', node.peerAddr, '--client-addr', node.clientAddr,
      '--initial-cluster', this.initialCluster, '--heartbeat-ms', String(this.heartbeatMs), '--election-ms', String(this.electionMs),
      ...this.extraArgs, ...extra,
    ];
  }

  startNode(node: TestNode, extra: readonly string[] = []): void {
    node.start(this.serveArgs(node, extra));
  }

  node(id: string): TestNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  running(): TestNode[] {
    return this.nodes.filter((n) => n.isRunning);
  }

  /**
   * Waits until every running node answers, exactly one of them is the leader, and all of them
   * name it as leader in the same term. Fails early if a node died.
   */
  async waitForLeader(timeoutMs = 10_000): Promise<TestNode> {
    return pollUntil(`one leader that every running node agrees on (${this.describe()})`, timeoutMs, async () => {
      this.assertNoUnexpectedExit();
      const running = this.running();
      const statuses = await Promise.all(running.map((n) => n.status()));
      if (statuses.some((s) => s === null)) return undefined;
      const leaders = statuses.filter((s) => s!.role === 'leader');
      if (leaders.length !== 1) return undefined;
      const { id, term } = leaders[0]!;
      return statuses.every((s) => s!.leader === id && s!.term === term) ? this.node(id) : undefined;
    });
  }

  /** A leader, and every running node lists every member's peer and client address (forwarding needs them). */
  async waitForReady(timeoutMs = 10_000): Promise<TestNode> {
    const started = Date.now();
    const leader = await this.waitForLeader(timeoutMs);
    await pollUntil('every node to know every member address', Math.max(1000, timeoutMs - (Date.now() - started)), async () => {
      this.assertNoUnexpectedExit();
      const statuses = await Promise.all(this.running().map((n) => n.status()));
      const complete = statuses.every((s) => s !== null && this.nodes.every((n) => s.members.some((m) => m.id === n.id && m.peerAddr === n.peerAddr && m.clientAddr === n.clientAddr)));
      return complete ? true : undefined;
    });
    return leader;
  }

  /** Waits until `node` has applied at least `index`. */
  async waitApplied(node: TestNode, index: number, timeoutMs = 10_000): Promise<StatusJson> {
    return pollUntil(`${node.id} to apply index ${index}`, timeoutMs, async () => {
      const s = await node.status();
      return s !== null && s.appliedIndex >= index ? s : undefined;
    });
  }

  /** Kills the node with `signal` and starts it again with the same flags (plus `extra`). */
  async restart(node: TestNode, signal: 'SIGKILL' | 'SIGTERM', extra: readonly string[] = []): Promise<void> {
    if (node.isRunning) await node.stop(signal);
    this.startNode(node, extra);
  }

  /** Kills every child with SIGKILL and removes the data. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.isRunning).map((n) => n.stop('SIGKILL').catch(() => undefined)));
    removeTempDir(this.root);
  }

  /** One line per node: running or exit, and the tail of stderr. For failure messages. */
  describe(): string {
    return this.nodes
      .map((n) => `${n.id}: ${n.isRunning ? 'running' : `exited ${JSON.stringify(n.lastExit)}`}${n.stderr ? ` stderr: ${n.stderr.trim().slice(0, 400)}` : ''}`)
      .join('; ');
  }

  /** Throws when a node exited without being stopped by the test: waiting longer cannot help. */
  assertNoUnexpectedExit(): void {
    const crashed = this.nodes.filter((n) => n.hasCrashed);
    if (crashed.length > 0) throw new Error(`${crashed.map((n) => n.id).join(', ')} exited unexpectedly: ${this.describe()}`);
  }
}
