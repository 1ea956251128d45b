// The cluster under test: real `raftkv serve` processes (dist/src/cli/main.js), each in its own
// network namespace (netns mode) or on 127.0.0.1 (loopback mode). Process faults act on the
// node's pid (`ip netns exec` execs node in place, so the pid is the node's): SIGKILL then the
// same command again, SIGSTOP then SIGCONT. Membership changes go through the HTTP admin API and
// `serve --join`. Every child is SIGKILLed by destroy() and by the process exit hook. A secure
// cluster (`--secure`) runs every node, joiners included, with TLS on both ports and --auth-file,
// and every request of the harness goes over https with the run's CA and admin token.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../transport/free-ports.js';
import { createNodeNamespace, deleteNamespace } from './netns.js';
import { errorCode, exchange, probe, sleep, type ClientSecurity } from './http.js';
import { FaultSecurity } from './security.js';
import type { NodeStatus } from '../client/index.js';

/** The compiled CLI, next to this compiled file (dist/src/faults/ → dist/src/cli/). */
export const MAIN_JS = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const liveChildren = new Set<ChildProcess>();
const dataRoots = new Set<string>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of dataRoots) rmSync(dir, { recursive: true, force: true });
});

/** What GET /v1/status answers (the typed client's own type). */
export type { NodeStatus };

/** One raftkv node: fixed id, addresses and data dir across restarts. */
export class NodeProcess {
  readonly url: string;
  private child: ChildProcess | null = null;
  private isPausedNow = false;
  /** Starts so far (restarts included). */
  starts = 0;
  /** Exits the harness did not cause (a crash), as `code=... signal=...` lines. */
  readonly unexpectedExits: string[] = [];
  private isKilling = false;
  private isLeaving = false;

  constructor(
    readonly id: string,
    readonly serial: number,
    /** The node's namespace; null on loopback. */
    readonly namespace: string | null,
    readonly peerAddr: string,
    readonly clientAddr: string,
    readonly dataDir: string,
    readonly logFile: string,
    private readonly args: readonly string[],
    /** The harness's CA and token for a secure node; null: plain http. */
    readonly security: ClientSecurity | null,
  ) {
    this.url = `${security === null ? 'http' : 'https'}://${clientAddr}`;
  }

  get isRunning(): boolean {
    return this.child !== null;
  }

  get isPaused(): boolean {
    return this.isPausedNow;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): void {
    if (this.child !== null) throw new Error(`${this.id} is already running`);
    const command = this.namespace === null ? [process.execPath, MAIN_JS] : ['ip', 'netns', 'exec', this.namespace, process.execPath, MAIN_JS];
    const child = spawn(command[0] as string, [...command.slice(1), ...this.args], { stdio: ['ignore', 'pipe', 'pipe'], env: nodeEnv() });
    liveChildren.add(child);
    this.child = child;
    this.starts++;
    this.isPausedNow = false;
    const log = (chunk: Buffer): void => appendFileSync(this.logFile, chunk);
    child.stdout!.on('data', log);
    child.stderr!.on('data', log);
    this.isKilling = false;
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      // A server being removed stops by itself, cleanly, once told it is out.
      const leftCleanly = this.isLeaving && code === 0;
      if (!this.isKilling && !leftCleanly) this.unexpectedExits.push(`${this.id} exited by itself: code=${code} signal=${signal}`);
      if (this.child === child) {
        this.child = null;
        this.isPausedNow = false;
      }
      appendFileSync(this.logFile, `--- harness: ${this.id} exited code=${code} signal=${signal}\n`);
    });
  }

  /** The harness is removing this server from the cluster: a clean exit of its own is expected. */
  markLeaving(): void {
    this.isLeaving = true;
  }

  get isLeavingCluster(): boolean {
    return this.isLeaving;
  }

  /** Whether the process exits by itself within `ms` (true at once if it is not running). */
  async exitsWithin(ms: number): Promise<boolean> {
    const child = this.child;
    if (child === null) return true;
    const exited = new Promise<boolean>((r) => child.once('exit', () => r(true)));
    return await Promise.race([exited, sleep(ms).then(() => false)]);
  }

  /** SIGKILL, and wait (bounded) until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.isKilling = true;
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
    if (this.child === child) throw new Error(`${this.id} (pid ${child.pid}) survived SIGKILL for 5 s`);
  }

  pause(): void {
    if (this.child === null || this.isPausedNow) return;
    this.child.kill('SIGSTOP');
    this.isPausedNow = true;
  }

  resume(): void {
    if (this.child === null || !this.isPausedNow) return;
    this.child.kill('SIGCONT');
    this.isPausedNow = false;
  }

  async status(timeoutMs = 1000): Promise<NodeStatus | null> {
    if (!this.isRunning || this.isPausedNow) return null;
    const reply = await probe(this.url, '/v1/status', { timeoutMs, security: this.security });
    if (reply === null || reply.status !== 200) return null;
    try {
      return JSON.parse(reply.body.toString('utf8')) as NodeStatus;
    } catch {
      return null;
    }
  }
}

function nodeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RAFTKV_') && !k.startsWith('NODE_TEST')) env[k] = v;
  return env;
}

export interface ClusterConfig {
  readonly nodes: number;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** Data dirs live here; removed by destroy(). */
  readonly dataRoot: string;
  /** Node logs go here (kept). */
  readonly logDir: string;
  /** Namespace prefix in netns mode; null on loopback. */
  readonly netnsPrefix: string | null;
  /** TLS on both ports and --auth-file on every node; the PKI goes in `dataRoot`. */
  readonly secure: boolean;
}

const PEER_PORT = 7000;
const CLIENT_PORT = 8000;

export class FaultCluster {
  /** The members as the harness last made them (founders, plus joined, minus removed). */
  members: NodeProcess[] = [];
  /** Every node this run started, removed ones included. */
  readonly allNodes: NodeProcess[] = [];
  private serial = 0;
  private initialCluster = '';
  /** The run's CA, certificates and auth file; null for a plain cluster. */
  private readonly pki: FaultSecurity | null;

  constructor(readonly config: ClusterConfig) {
    mkdirSync(config.dataRoot, { recursive: true });
    dataRoots.add(config.dataRoot);
    mkdirSync(config.logDir, { recursive: true });
    // In the data root: the CA's key and the token go wherever the data goes, removed with it.
    this.pki = config.secure ? new FaultSecurity(join(config.dataRoot, 'pki')) : null;
  }

  /** What the harness's own requests need to reach this cluster; null when it is plain. */
  get security(): ClientSecurity | null {
    return this.pki?.client ?? null;
  }

  get isNetns(): boolean {
    return this.config.netnsPrefix !== null;
  }

  /** Starts the founding voters and waits for a leader every one of them agrees on. */
  async start(): Promise<void> {
    const slots = [];
    for (let i = 0; i < this.config.nodes; i++) slots.push(await this.allocate());
    this.initialCluster = slots.map((s) => `${s.id}=${s.peerAddr}`).join(',');
    for (const s of slots) {
      const node = this.makeNode(s, ['--initial-cluster', this.initialCluster]);
      this.members.push(node);
      node.start();
    }
    await this.waitHealthy(30_000);
    if (this.pki !== null) {
      const problems = (await Promise.all(this.members.map((n) => this.pki!.insecurity(n)))).filter((p) => p !== null);
      if (problems.length > 0) throw new Error(`a --secure run on nodes that are not: ${problems.join('; ')}`);
    }
  }

  urls(): string[] {
    return this.members.map((n) => n.url);
  }

  node(id: string): NodeProcess | undefined {
    return this.members.find((n) => n.id === id);
  }

  /** The node that the most members name as leader, among those answering. */
  async leader(): Promise<NodeProcess | null> {
    const statuses = await Promise.all(this.members.map((n) => n.status(500)));
    let best: NodeStatus | null = null;
    for (const s of statuses) if (s !== null && s.role === 'leader' && (best === null || s.term > best.term)) best = s;
    return best === null ? null : (this.node(best.id) ?? null);
  }

  /**
   * Healthy: every member runs and answers, one leader that all of them name in the same term,
   * the leader's member list is the harness's, and every member applied the leader's commit index.
   */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    while (Date.now() < deadline) {
      why = await this.unhealthyReason();
      if (why === '') return;
      await sleep(100);
    }
    throw new Error(`cluster not healthy after ${timeoutMs} ms: ${why}`);
  }

  private async unhealthyReason(): Promise<string> {
    const down = this.members.filter((n) => !n.isRunning || n.isPaused);
    if (down.length > 0) return `${down.map((n) => n.id).join(',')} not running`;
    const statuses = await Promise.all(this.members.map((n) => n.status(1000)));
    const silent = this.members.filter((_, i) => statuses[i] === null);
    if (silent.length > 0) return `${silent.map((n) => n.id).join(',')} do not answer /v1/status`;
    const all = statuses as NodeStatus[];
    const leaders = all.filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return `${leaders.length} leaders`;
    const leader = leaders[0]!;
    if (!all.every((s) => s.leader === leader.id && s.term === leader.term)) return 'members disagree on the leader';
    const ids = this.members.map((n) => n.id).sort().join(',');
    const configured = leader.members.map((m) => m.id).sort().join(',');
    if (ids !== configured) return `leader's members ${configured} are not ${ids}`;
    if (leader.members.some((m) => m.role !== 'voter')) return 'a member is still a learner';
    const lagging = all.filter((s) => s.appliedIndex < leader.commitIndex);
    if (lagging.length > 0) {
      // Re-read: the leader's index was read before some of the others.
      await sleep(50);
      const again = await Promise.all(lagging.map((s) => this.node(s.id)!.status(1000)));
      if (again.some((s) => s === null || s.appliedIndex < leader.commitIndex)) return `${lagging.map((s) => s.id).join(',')} behind the commit index ${leader.commitIndex}`;
    }
    return '';
  }

  /** Joins a new node (learner, then promoted) and waits until it is a voter. */
  async addNode(timeoutMs = 20_000): Promise<NodeProcess> {
    const via = this.members.filter((n) => n.isRunning && !n.isPaused);
    if (via.length === 0) throw new Error('no running member to join through');
    const slot = await this.allocate();
    const node = this.makeNode(slot, ['--join', via.map((n) => n.url)[0] as string, ...(this.pki?.joinFlags() ?? [])]);
    node.start();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.leader();
      const s = leader === null ? null : await leader.status();
      if (s !== null && s.members.some((m) => m.id === node.id && m.role === 'voter')) {
        this.members.push(node);
        return node;
      }
      await sleep(100);
    }
    // It never became a voter: take it out again so the cluster stays as the harness knows it.
    this.members.push(node);
    await this.removeNode(node, 20_000).catch(() => undefined);
    throw new Error(`${node.id} did not become a voter within ${timeoutMs} ms`);
  }

  /** DELETE /v1/members/{id} (retried while a change is in progress), then stops and erases the node. */
  async removeNode(node: NodeProcess, timeoutMs = 20_000): Promise<void> {
    node.markLeaving();
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let removed = false;
    while (Date.now() < deadline && !removed) {
      const others = this.members.filter((n) => n !== node && n.isRunning && !n.isPaused);
      for (const via of others) {
        try {
          const reply = await exchange(via.url, `/v1/members/${encodeURIComponent(node.id)}`, { method: 'DELETE', timeoutMs: 5000, security: this.security, headers: { 'request-timeout': '4000' } });
          if (reply.status === 200 || reply.status === 404) {
            removed = true;
            break;
          }
          last = `${reply.status} ${errorCode(reply)}`;
        } catch (err) {
          last = (err as Error).message;
        }
      }
      // A 504 may still have gone through: check the configuration itself.
      if (!removed) {
        const leader = await this.leader();
        const s = leader === null || leader === node ? null : await leader.status();
        if (s !== null && !s.members.some((m) => m.id === node.id)) removed = true;
        else await sleep(200);
      }
    }
    if (!removed) throw new Error(`could not remove ${node.id}: ${last}`);
    this.members = this.members.filter((n) => n !== node);
    await this.retire(node);
  }

  async transferLeader(to: NodeProcess): Promise<string> {
    const via = (await this.leader()) ?? to;
    const reply = await exchange(via.url, '/v1/leader/transfer', { method: 'POST', body: JSON.stringify({ to: to.id }), timeoutMs: 5000, security: this.security, headers: { 'content-type': 'application/json', 'request-timeout': '4000' } });
    return `${reply.status} ${reply.status === 200 ? reply.body.toString('utf8') : errorCode(reply)}`;
  }

  /** SIGKILLs every node and removes the data (node logs are kept). */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((n) => this.retire(n)));
    this.members = [];
    rmSync(this.config.dataRoot, { recursive: true, force: true });
    dataRoots.delete(this.config.dataRoot);
  }

  private async retire(node: NodeProcess): Promise<void> {
    node.resume();
    // Told once C_new is committed, a removed server stops by itself (its HTTP server gives
    // requests in flight up to 3 s); give it that long.
    if (node.isLeavingCluster) {
      const left = await node.exitsWithin(6000);
      appendFileSync(node.logFile, `--- harness: ${node.id} ${left ? 'stopped by itself after its removal' : 'still running 6 s after its removal; killing it'}\n`);
    }
    await node.kill().catch(() => undefined);
    rmSync(node.dataDir, { recursive: true, force: true });
    if (node.namespace !== null) await deleteNamespace(node.namespace);
  }

  private async allocate(): Promise<{ id: string; serial: number; ns: string | null; peerAddr: string; clientAddr: string }> {
    const serial = ++this.serial;
    const id = `n${serial}`;
    if (this.config.netnsPrefix !== null) {
      const { ns, address } = await createNodeNamespace(this.config.netnsPrefix, id, serial);
      return { id, serial, ns, peerAddr: `${address}:${PEER_PORT}`, clientAddr: `${address}:${CLIENT_PORT}` };
    }
    const [peer, client] = await freePorts(2);
    return { id, serial, ns: null, peerAddr: `127.0.0.1:${peer}`, clientAddr: `127.0.0.1:${client}` };
  }

  private makeNode(slot: { id: string; serial: number; ns: string | null; peerAddr: string; clientAddr: string }, extra: readonly string[]): NodeProcess {
    const dataDir = join(this.config.dataRoot, slot.id);
    const args = [
      'serve', '--id', slot.id, '--data-dir', dataDir, '--peer-addr', slot.peerAddr, '--client-addr', slot.clientAddr,
      '--heartbeat-ms', String(this.config.heartbeatMs), '--election-ms', String(this.config.electionMs), '--log-level', 'warn',
      // Peer and client addresses share the host: one certificate names it for both ports.
      ...(this.pki?.serveFlags(slot.id, slot.peerAddr.split(':')[0] as string) ?? []),
      ...extra,
    ];
    const node = new NodeProcess(slot.id, slot.serial, slot.ns, slot.peerAddr, slot.clientAddr, dataDir, join(this.config.logDir, `${slot.id}.log`), args, this.security);
    this.allNodes.push(node);
    return node;
  }
}
