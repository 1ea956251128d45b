// Process-level test harness: the process cluster of src/harness/ (real `raftkv serve` processes
// of the compiled main.js on 127.0.0.1 with free ports, data dirs under os.tmpdir(), bounded
// waits, kill -9 / SIGTERM / SIGSTOP / restart) with what the tests add: a one-call start that
// waits until the cluster is ready, the test HTTP helpers trusting a secure cluster's CA and
// token, CLI runs to completion, and LeaderWatch. Every child is killed and every directory
// removed by destroy(), and again at exit or on a signal, so a failing or interrupted test leaves
// nothing running.
import { childEnv, cleanUpOnSignals, GroupChild, MAIN_JS, makeTempDir, ProcessCluster, type ExitInfo, type ProcessNode } from '../../src/harness/index.js';
import { setEndpointSecurity } from './http.js';
import type { ChildProcess } from 'node:child_process';

cleanUpOnSignals();

export { childEnv, ClusterSecurity, MAIN_JS, makeTempDir, pollUntil, ProcessNode as TestNode, removeTempDir } from '../../src/harness/index.js';
export type { ExitInfo } from '../../src/harness/index.js';
export { freePorts } from '../../src/transport/free-ports.js';
type TestNode = ProcessNode;

export interface RunResult extends ExitInfo {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `main.js args` to completion (bounded) and returns its exit and output. */
export async function runMain(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  let stdout = '';
  let stderr = '';
  const child = new GroupChild(process.execPath, [MAIN_JS, ...args], { env: options.env ?? childEnv(), cwd: options.cwd, onStdout: (s) => (stdout += s), onStderr: (s) => (stderr += s) });
  const exit = await child.waitExit(timeoutMs);
  if (child.spawnError !== null) throw child.spawnError;
  if (exit === null) {
    await child.stop('SIGKILL', 0);
    throw new Error(`raftkv ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr}`);
  }
  return { ...exit, stdout, stderr };
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
  /**
   * HTTPS on the client port, mutual TLS between peers and --auth-file with an admin token
   * (`TestCluster.security`), every request of the test helpers carrying CA and token.
   */
  readonly secure?: boolean;
  /** Every node also serves the etcd v3 gRPC API (ProcessNode.etcdAddr). */
  readonly etcdApi?: boolean;
}

export class TestCluster extends ProcessCluster {
  /** LeaderWatches on this cluster, halted by destroy() (a failed test may not have stopped its own). */
  readonly watches = new Set<LeaderWatch>();

  /** Starts `size` nodes and waits until a leader is elected and every node knows every address. */
  static async start(options: ClusterOptions): Promise<TestCluster> {
    const cluster = new TestCluster({ ...options, root: makeTempDir(options.name ?? 'cluster') });
    try {
      await cluster.startFounders(options.size);
      await cluster.waitForReady(15_000);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** A new slot, as ProcessCluster.addSlot, that the test HTTP helpers reach with the cluster's CA and token. */
  override async addSlot(id?: string): Promise<TestNode> {
    const node = await super.addSlot(id);
    if (this.security !== null) setEndpointSecurity(node.url, this.security.client);
    return node;
  }

  /** Halts the watches, kills every child with SIGKILL and removes the data. Safe to call twice. */
  override async destroy(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.halt()));
    await super.destroy();
  }
}

/**
 * Election Safety (§5.2, Figure 3) seen from outside: polls every tracked node's /v1/status on its
 * own loop (a paused or dead node delays nobody) and records which nodes claimed leadership in
 * which term. At most one leader per term, ever; check() throws with the evidence otherwise.
 */
export class LeaderWatch {
  /** term → the ids that answered role "leader" in that term. */
  readonly leadersByTerm = new Map<number, Set<string>>();
  polls = 0;
  private isStopping = false;
  private readonly loops = new Map<TestNode, Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly cluster: TestCluster, private readonly intervalMs = 20) {
    this.timer = setInterval(() => this.spawnLoops(), 100);
    this.spawnLoops();
    cluster.watches.add(this);
  }

  /** Nodes added to the cluster later are picked up within 100 ms. */
  private spawnLoops(): void {
    for (const node of this.cluster.nodes) {
      if (this.loops.has(node)) continue;
      this.loops.set(node, this.loop(node));
    }
  }

  private async loop(node: TestNode): Promise<void> {
    while (!this.isStopping) {
      const s = node.isRunning && !node.isPaused ? await node.status(500) : null;
      if (s !== null) {
        this.polls++;
        if (s.role === 'leader') {
          const ids = this.leadersByTerm.get(s.term) ?? new Set<string>();
          ids.add(s.id);
          this.leadersByTerm.set(s.term, ids);
        }
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }

  /** Throws if two nodes ever claimed leadership in the same term. */
  check(): void {
    const twice = [...this.leadersByTerm].filter(([, ids]) => ids.size > 1);
    if (twice.length > 0) throw new Error(`two leaders in one term: ${twice.map(([t, ids]) => `term ${t}: ${[...ids].join(', ')}`).join('; ')}`);
  }

  /** The terms that had a leader, in order, with who led: for diagnostics. */
  describe(): string {
    return [...this.leadersByTerm].sort(([a], [b]) => a - b).map(([t, ids]) => `${t}:${[...ids].join('+')}`).join(' ');
  }

  async stop(): Promise<void> {
    await this.halt();
    this.check();
  }

  /** Stops polling, without judging what was seen. */
  async halt(): Promise<void> {
    this.isStopping = true;
    clearInterval(this.timer);
    await Promise.all(this.loops.values());
    this.cluster.watches.delete(this);
  }
}

/**
 * Stops a `raftkv cluster` supervisor (or any child that handles Ctrl-C): SIGINT, up to 10 s for
 * it to stop its nodes and exit, then SIGKILL. `exited` settles when the child exits.
 */
export async function stopSupervisor(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
