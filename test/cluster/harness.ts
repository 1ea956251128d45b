// Process-level test harness: real `raftkv serve` processes (the compiled dist main.js) on
// 127.0.0.1 with free ports, data dirs under os.tmpdir(), bounded waits for a leader, and
// kill -9 / SIGTERM / restart. Every child is killed and every directory removed by destroy(),
// and again by an exit hook, so a failing or interrupted test leaves nothing running.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../src/transport/free-ports.js';
import { makeCertificate, makeCertificateAuthority, type KeyPair } from '../../src/security/certs.js';
import { http, parseMetrics, setEndpointSecurity, tryHttp, type ConfigurationJson, type NodeStatus } from './http.js';

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

export { freePorts };

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
  private isStoppedBySignal = false;

  constructor(
    readonly id: string,
    readonly peerAddr: string,
    readonly clientAddr: string,
    readonly dataDir: string,
    /** Where stdout (JSON logs) of every incarnation is appended. */
    readonly logFile: string,
    scheme: 'http' | 'https' = 'http',
  ) {
    this.url = `${scheme}://${clientAddr}`;
  }

  get isRunning(): boolean {
    return this.child !== null;
  }

  /** SIGSTOPped by pause() and not yet resumed: alive, but answers nothing. */
  get isPaused(): boolean {
    return this.child !== null && this.isStoppedBySignal;
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
    this.isStoppedBySignal = false;
    child.stdout!.on('data', (chunk: Buffer) => appendFileSync(this.logFile, chunk));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        if (this.child === child) {
          this.child = null;
          this.isStoppedBySignal = false;
        }
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
    // A stopped process only acts on SIGTERM once continued.
    if (signal === 'SIGTERM' && this.isStoppedBySignal) this.resume();
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

  /**
   * SIGSTOP: the process freezes, its sockets stay open but nothing answers, as if a network
   * partition cut it off (loopback offers no per-link cut without network namespaces).
   */
  pause(): void {
    if (this.child === null) throw new Error(`${this.id} is not running`);
    this.child.kill('SIGSTOP');
    this.isStoppedBySignal = true;
  }

  /** SIGCONT after pause(): the process carries on, with whatever messages queued meanwhile. */
  resume(): void {
    if (this.child === null || !this.isStoppedBySignal) return;
    this.child.kill('SIGCONT');
    this.isStoppedBySignal = false;
  }

  /** The test expects this node to exit on its own (it is being removed): not a crash. */
  expectExit(): void {
    this.isStopRequested = true;
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

  /** Waits (bounded) for the process to exit on its own; that exit is then expected, not a crash. */
  async waitExit(timeoutMs: number): Promise<ExitInfo> {
    const exited = this.exited;
    if (exited === null) throw new Error(`${this.id} was never started`);
    this.isStopRequested = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const result = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (result === null) throw new Error(`${this.id} did not exit within ${timeoutMs} ms`);
    return result;
  }

  /** This node's own /v1/status, or null when it does not answer. */
  async status(timeoutMs = 1000): Promise<NodeStatus | null> {
    const reply = await tryHttp(this.url, '/v1/status', { timeoutMs });
    return reply !== null && reply.status === 200 ? reply.json<NodeStatus>() : null;
  }

  /** This node's own view of the configuration (GET /v1/configuration), or null when it does not answer. */
  async configuration(timeoutMs = 1000): Promise<ConfigurationJson | null> {
    const reply = await tryHttp(this.url, '/v1/configuration', { timeoutMs });
    return reply !== null && reply.status === 200 ? reply.json<ConfigurationJson>() : null;
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
  /**
   * HTTPS on the client port, mutual TLS between peers and --auth-file with an admin token
   * (`TestCluster.security`), every request of the test helpers carrying CA and token.
   */
  readonly secure?: boolean;
}

/** What a secure test cluster hands its tests: the CA, the admin token, the auth file and each node's certificate. */
export class ClusterSecurity {
  readonly ca: KeyPair;
  readonly adminToken = `admin-${randomBytes(16).toString('hex')}`;
  readonly authFile: string;

  constructor(readonly dir: string) {
    this.ca = makeCertificateAuthority(dir);
    this.authFile = join(dir, 'auth.json');
    writeFileSync(this.authFile, JSON.stringify({ principals: [{ name: 'admin', token: this.adminToken, permissions: [{ access: 'admin' }] }] }), { mode: 0o600 });
  }

  /** The node's key pair (made on first use). */
  certificate(id: string): KeyPair {
    return makeCertificate(this.ca, this.dir, id, { commonName: id });
  }

  /** The TLS and auth flags for `serve`. */
  serveFlags(id: string): string[] {
    const pair = this.certificate(id);
    return [
      '--cert-file', pair.cert, '--key-file', pair.key,
      '--peer-cert-file', pair.cert, '--peer-key-file', pair.key, '--peer-trusted-ca-file', this.ca.cert,
      '--auth-file', this.authFile,
    ];
  }

  register(node: TestNode): void {
    setEndpointSecurity(node.url, { ca: readFileSync(this.ca.cert), token: this.adminToken });
  }
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
    private readonly slots: TestNode[],
    readonly initialCluster: string,
    private readonly extraArgs: readonly string[],
    timing: { heartbeatMs: number; electionMs: number },
    /** Set for a secure cluster (ClusterOptions.secure). */
    readonly security: ClusterSecurity | null = null,
  ) {
    this.heartbeatMs = timing.heartbeatMs;
    this.electionMs = timing.electionMs;
  }

  private newSlot(id: string, peer: number, client: number): TestNode {
    const node = new TestNode(id, `127.0.0.1:${peer}`, `127.0.0.1:${client}`, join(this.root, id), join(this.root, `${id}.log`), this.security === null ? 'http' : 'https');
    this.security?.register(node);
    return node;
  }

  /** Starts `size` nodes and waits until a leader is elected and every node knows every address. */
  static async start(options: ClusterOptions): Promise<TestCluster> {
    const root = makeTempDir(options.name ?? 'cluster');
    const ports = await freePorts(options.size * 2);
    const nodes: TestNode[] = [];
    const peers = Array.from({ length: options.size }, (_, i) => `n${i + 1}=127.0.0.1:${ports[2 * i]}`);
    const cluster = new TestCluster(root, nodes, peers.join(','), options.extraArgs ?? [], {
      heartbeatMs: options.heartbeatMs ?? 50,
      electionMs: options.electionMs ?? 300,
    }, options.secure === true ? new ClusterSecurity(join(root, 'pki')) : null);
    for (let i = 0; i < options.size; i++) nodes.push(cluster.newSlot(`n${i + 1}`, ports[2 * i]!, ports[2 * i + 1]!));
    try {
      for (const node of nodes) cluster.startNode(node);
      await cluster.waitForReady(15_000);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** The node slots the cluster tracks: the founders, plus added ones, minus forgotten ones. */
  get nodes(): readonly TestNode[] {
    return this.slots;
  }

  /**
   * A new slot (fresh ports and data dir under the cluster's root) that the cluster tracks from
   * now on; not started. Start it with startJoining() or add it by hand and start it.
   */
  async addSlot(id: string): Promise<TestNode> {
    if (this.slots.some((n) => n.id === id)) throw new Error(`${id} is already a slot`);
    const [peer, client] = await freePorts(2);
    const node = this.newSlot(id, peer!, client!);
    this.slots.push(node);
    return node;
  }

  /** Stops tracking `node` (it must not be running): waits and checks no longer include it. */
  forget(node: TestNode): void {
    if (node.isRunning) throw new Error(`${node.id} is still running; stop it first`);
    const i = this.slots.indexOf(node);
    if (i >= 0) this.slots.splice(i, 1);
  }

  /** The `serve` flags that make `node` join the running cluster through `via` (no --initial-cluster). */
  joinArgs(node: TestNode, via: TestNode, extra: readonly string[] = []): string[] {
    return [
      'serve', '--id', node.id, '--data-dir', node.dataDir, '--peer-addr', node.peerAddr, '--client-addr', node.clientAddr,
      '--join', via.url, '--heartbeat-ms', String(this.heartbeatMs), '--election-ms', String(this.electionMs),
      ...(this.security === null ? [] : [...this.security.serveFlags(node.id), '--join-token', this.security.adminToken]), ...this.extraArgs, ...extra,
    ];
  }

  startJoining(node: TestNode, via: TestNode, extra: readonly string[] = []): void {
    node.start(this.joinArgs(node, via, extra));
  }

  /** The `serve` flags of `node`, with `extra` appended (later flags win). */
  serveArgs(node: TestNode, extra: readonly string[] = []): string[] {
    return [
      'serve', '--id', node.id, '--data-dir', node.dataDir, '--peer-addr', node.peerAddr, '--client-addr', node.clientAddr,
      '--initial-cluster', this.initialCluster, '--heartbeat-ms', String(this.heartbeatMs), '--election-ms', String(this.electionMs),
      ...(this.security?.serveFlags(node.id) ?? []), ...this.extraArgs, ...extra,
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

  /** Running and not paused: the nodes that can answer. */
  responsive(): TestNode[] {
    return this.nodes.filter((n) => n.isRunning && !n.isPaused);
  }

  /**
   * Waits until every running node answers, exactly one of them is the leader, and all of them
   * name it as leader in the same term. Fails early if a node died.
   */
  async waitForLeader(timeoutMs = 20_000): Promise<TestNode> {
    return pollUntil(`one leader that every running node agrees on (${this.describe()})`, timeoutMs, async () => {
      this.assertNoUnexpectedExit();
      const running = this.responsive();
      const statuses = await Promise.all(running.map((n) => n.status()));
      if (statuses.some((s) => s === null)) return undefined;
      const leaders = statuses.filter((s) => s!.role === 'leader');
      if (leaders.length !== 1) return undefined;
      const { id, term } = leaders[0]!;
      return statuses.every((s) => s!.leader === id && s!.term === term) ? this.node(id) : undefined;
    });
  }

  /** A leader, and every running node lists every member's peer and client address (forwarding needs them). */
  async waitForReady(timeoutMs = 20_000): Promise<TestNode> {
    const started = Date.now();
    const leader = await this.waitForLeader(timeoutMs);
    await pollUntil('every node to know every member address and the cluster id', Math.max(1000, timeoutMs - (Date.now() - started)), async () => {
      this.assertNoUnexpectedExit();
      const statuses = await Promise.all(this.responsive().map((n) => n.status()));
      // ...and has learned the cluster id the first leader commits (API.md "Security").
      const complete = statuses.every((s) => s !== null && s.clusterId !== null && this.nodes.every((n) => s.members.some((m) => m.id === n.id && m.peerAddr === n.peerAddr && m.clientAddr === n.clientAddr)));
      return complete ? true : undefined;
    });
    return leader;
  }

  /**
   * Waits until each of `nodes` (default: every responsive one) is in the configuration with
   * exactly these voters and learners, committed (no change pending, not joint).
   */
  async waitForConfiguration(expected: { voters: readonly string[]; learners?: readonly string[] }, timeoutMs = 20_000, nodes?: readonly TestNode[]): Promise<void> {
    const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
    let last = '';
    const what = `the configuration voters=[${expected.voters.join(',')}] learners=[${(expected.learners ?? []).join(',')}] everywhere`;
    try {
      await pollUntil(what, timeoutMs, async () => {
        this.assertNoUnexpectedExit();
        const views = await Promise.all((nodes ?? this.responsive()).map((n) => n.configuration()));
        last = views.map((v) => (v === null ? 'no answer' : `${v.id}: voters=${v.voters.join(',')} out=${v.votersOutgoing.join(',')} learners=${v.learners.join(',')} pending=${v.pending}`)).join('; ');
        const ok = views.every((v) => v !== null && !v.pending && !v.joint && same(v.voters, expected.voters) && same(v.learners, expected.learners ?? []));
        return ok ? true : undefined;
      });
    } catch (err) {
      throw new Error(`${(err as Error).message} (last seen: ${last})`);
    }
  }

  /** Waits until `node` has applied at least `index`. */
  async waitApplied(node: TestNode, index: number, timeoutMs = 20_000): Promise<NodeStatus> {
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

  /** LeaderWatches on this cluster, halted by destroy() (a failed test may not have stopped its own). */
  readonly watches = new Set<LeaderWatch>();

  /** Kills every child with SIGKILL and removes the data. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.halt()));
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
