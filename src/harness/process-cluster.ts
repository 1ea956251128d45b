// A cluster of `raftkv serve` processes (process-node.ts): the founders started with one
// --initial-cluster, joiners started with --join, every node on free loopback ports unless a
// subclass places it elsewhere (the fault suite's network namespaces), plain or secure
// (cluster-security.ts). Bounded waits for a leader, for readiness and for a configuration fail
// early when a node crashed, with every node's state and stderr in the message. destroy()
// SIGKILLs every node and removes the root; the exit hook of cleanup.ts does it too.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeStatus } from '../client/index.js';
import { freePorts } from '../transport/free-ports.js';
import { removeAtExit, removeTempDir } from './cleanup.js';
import { ClusterSecurity } from './cluster-security.js';
import { ProcessNode } from './process-node.js';
import { pollUntil } from './wait.js';

export interface ProcessClusterOptions {
  /** Data dirs, and the PKI of a secure cluster, live here; destroy() removes it. */
  readonly root: string;
  /** Node logs go here. @default root */
  readonly logDir?: string;
  /** @default 50 */
  readonly heartbeatMs?: number;
  /** @default 300 */
  readonly electionMs?: number;
  /** More `serve` flags for every node, after the harness's own (later flags win). @default [] */
  readonly extraArgs?: readonly string[];
  /**
   * HTTPS on the client port, mutual TLS between peers, --auth-file with an admin token, and
   * every probe of the harness carrying the CA and the token. @default false
   */
  readonly secure?: boolean;
  /** Flags for node itself before main.js, per node id (e.g. --cpu-prof). @default none */
  readonly nodeFlags?: (id: string) => readonly string[];
  /** The compiled CLI. @default MAIN_JS */
  readonly mainJs?: string;
  /**
   * Every node also serves the etcd v3 gRPC API (`--etcd-addr 127.0.0.1:PORT` on a free port);
   * ProcessNode.etcdAddr names it. @default false
   */
  readonly etcdApi?: boolean;
}

export const DEFAULT_PROCESS_CLUSTER_OPTIONS = { heartbeatMs: 50, electionMs: 300 } as const;

/** Where a node listens, and in which network namespace (null: this one). */
export interface Placement {
  readonly peerAddr: string;
  readonly clientAddr: string;
  readonly namespace: string | null;
  /** HOST:PORT of the etcd v3 gRPC API; absent: not served. */
  readonly etcdAddr?: string;
}

export class ProcessCluster {
  readonly root: string;
  readonly logDir: string;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** The CA, certificates and token of a secure cluster; null for a plain one. */
  readonly security: ClusterSecurity | null;
  /** The founders' --initial-cluster, set by startFounders(). */
  initialCluster = '';
  /** Every node this cluster made, forgotten ones included. */
  readonly allNodes: ProcessNode[] = [];
  private readonly slots: ProcessNode[] = [];
  private readonly extraArgs: readonly string[];
  private readonly options: ProcessClusterOptions;

  constructor(options: ProcessClusterOptions) {
    this.options = options;
    this.root = options.root;
    this.logDir = options.logDir ?? options.root;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_PROCESS_CLUSTER_OPTIONS.heartbeatMs;
    this.electionMs = options.electionMs ?? DEFAULT_PROCESS_CLUSTER_OPTIONS.electionMs;
    this.extraArgs = options.extraArgs ?? [];
    mkdirSync(this.root, { recursive: true });
    removeAtExit(this.root);
    mkdirSync(this.logDir, { recursive: true });
    // In the root: the CA's key and the token go wherever the data goes, and are removed with it.
    this.security = options.secure === true ? new ClusterSecurity(join(this.root, 'pki')) : null;
  }

  /** The nodes the cluster tracks: the founders, plus added ones, minus forgotten ones. */
  get nodes(): readonly ProcessNode[] {
    return this.slots;
  }

  get urls(): string[] {
    return this.slots.map((n) => n.url);
  }

  node(id: string): ProcessNode {
    const node = this.slots.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  running(): ProcessNode[] {
    return this.slots.filter((n) => n.isRunning);
  }

  /** Running and not paused: the nodes that can answer. */
  responsive(): ProcessNode[] {
    return this.slots.filter((n) => n.isRunning && !n.isPaused);
  }

  /** Where node number `serial` (1, 2, ...) listens: two free ports on 127.0.0.1. */
  protected async place(_id: string, _serial: number): Promise<Placement> {
    const [peer, client, etcd] = await freePorts(this.options.etcdApi === true ? 3 : 2);
    return { peerAddr: `127.0.0.1:${peer}`, clientAddr: `127.0.0.1:${client}`, namespace: null, ...(etcd !== undefined ? { etcdAddr: `127.0.0.1:${etcd}` } : {}) };
  }

  /**
   * A new node (its own addresses, data dir and log), tracked from now on but not started:
   * start it with startNode() or startJoining().
   */
  async addSlot(id = `n${this.allNodes.length + 1}`): Promise<ProcessNode> {
    if (this.allNodes.some((n) => n.id === id)) throw new Error(`${id} is already a slot`);
    const { peerAddr, clientAddr, namespace, etcdAddr } = await this.place(id, this.allNodes.length + 1);
    const node = new ProcessNode(id, peerAddr, clientAddr, join(this.root, id), join(this.logDir, `${id}.log`), {
      security: this.security?.client ?? null,
      namespace,
      nodeFlags: this.options.nodeFlags?.(id),
      mainJs: this.options.mainJs,
      etcdAddr: etcdAddr ?? null,
    });
    this.allNodes.push(node);
    this.slots.push(node);
    return node;
  }

  /** Makes the founders n1..n`size` and starts them with one --initial-cluster; does not wait. */
  async startFounders(size: number): Promise<void> {
    const founders: ProcessNode[] = [];
    for (let i = 0; i < size; i++) founders.push(await this.addSlot());
    this.initialCluster = founders.map((n) => `${n.id}=${n.peerAddr}`).join(',');
    for (const node of founders) this.startNode(node);
  }

  /** Stops tracking `node` (it must not be running): waits and checks no longer include it. */
  forget(node: ProcessNode): void {
    if (node.isRunning) throw new Error(`${node.id} is still running; stop it first`);
    this.untrack(node);
  }

  /** Stops tracking `node`, running or not (it is on its way out). */
  protected untrack(node: ProcessNode): void {
    const i = this.slots.indexOf(node);
    if (i >= 0) this.slots.splice(i, 1);
  }

  /** The `serve` flags of a founder, with `extra` appended (later flags win). */
  serveArgs(node: ProcessNode, extra: readonly string[] = []): string[] {
    return [...this.commonArgs(node), '--initial-cluster', this.initialCluster, ...this.extraArgs, ...extra];
  }

  /** The `serve` flags that make `node` join the running cluster through `via` (no --initial-cluster). */
  joinArgs(node: ProcessNode, via: ProcessNode, extra: readonly string[] = []): string[] {
    return [...this.commonArgs(node), '--join', via.url, ...(this.security?.joinFlags() ?? []), ...this.extraArgs, ...extra];
  }

  startNode(node: ProcessNode, extra: readonly string[] = []): void {
    node.start(this.serveArgs(node, extra));
  }

  startJoining(node: ProcessNode, via: ProcessNode, extra: readonly string[] = []): void {
    node.start(this.joinArgs(node, via, extra));
  }

  private commonArgs(node: ProcessNode): string[] {
    return [
      'serve', '--id', node.id, '--data-dir', node.dataDir, '--peer-addr', node.peerAddr, '--client-addr', node.clientAddr,
      '--heartbeat-ms', String(this.heartbeatMs), '--election-ms', String(this.electionMs),
      ...(node.etcdAddr !== null ? ['--etcd-addr', node.etcdAddr] : []),
      // Peer and client addresses share the host: one certificate names it for both ports.
      ...(this.security?.serveFlags(node.id, node.peerAddr.slice(0, node.peerAddr.lastIndexOf(':'))) ?? []),
    ];
  }

  /** Kills the node with `signal` and starts it again with the same flags (plus `extra`). */
  async restart(node: ProcessNode, signal: 'SIGKILL' | 'SIGTERM', extra: readonly string[] = []): Promise<void> {
    if (node.isRunning) await node.stop(signal);
    this.startNode(node, extra);
  }

  /** The node that answering nodes name as leader in the highest term, or null. */
  async leader(timeoutMs = 500): Promise<ProcessNode | null> {
    const statuses = await Promise.all(this.slots.map((n) => n.status(timeoutMs)));
    let best: NodeStatus | null = null;
    for (const s of statuses) if (s !== null && s.role === 'leader' && (best === null || s.term > best.term)) best = s;
    return best === null ? null : (this.slots.find((n) => n.id === best.id) ?? null);
  }

  /**
   * Waits until every responsive node answers, exactly one of them is the leader, and all of
   * them name it as leader in the same term. Fails early if a node crashed.
   */
  async waitForLeader(timeoutMs = 20_000): Promise<ProcessNode> {
    return pollUntil(`one leader that every running node agrees on (${this.describe()})`, timeoutMs, async () => {
      this.assertNoUnexpectedExit();
      const statuses = await Promise.all(this.responsive().map((n) => n.status()));
      if (statuses.some((s) => s === null)) return undefined;
      const leaders = statuses.filter((s) => s!.role === 'leader');
      if (leaders.length !== 1) return undefined;
      const { id, term } = leaders[0]!;
      return statuses.every((s) => s!.leader === id && s!.term === term) ? this.node(id) : undefined;
    });
  }

  /** A leader, and every responsive node lists every member's peer and client address (forwarding needs them). */
  async waitForReady(timeoutMs = 20_000): Promise<ProcessNode> {
    const started = Date.now();
    const leader = await this.waitForLeader(timeoutMs);
    await pollUntil('every node to know every member address and the cluster id', Math.max(1000, timeoutMs - (Date.now() - started)), async () => {
      this.assertNoUnexpectedExit();
      const statuses = await Promise.all(this.responsive().map((n) => n.status()));
      // ...and has learned the cluster id the first leader commits (API.md "Security").
      const isComplete = statuses.every((s) => s !== null && s.clusterId !== null && this.slots.every((n) => s.members.some((m) => m.id === n.id && m.peerAddr === n.peerAddr && m.clientAddr === n.clientAddr)));
      return isComplete ? true : undefined;
    });
    return leader;
  }

  /**
   * Waits until each of `nodes` (default: every responsive one) is in the configuration with
   * exactly these voters and learners, committed (no change pending, not joint).
   */
  async waitForConfiguration(expected: { voters: readonly string[]; learners?: readonly string[] }, timeoutMs = 20_000, nodes?: readonly ProcessNode[]): Promise<void> {
    const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
    let last = '';
    const what = `the configuration voters=[${expected.voters.join(',')}] learners=[${(expected.learners ?? []).join(',')}] everywhere`;
    try {
      await pollUntil(what, timeoutMs, async () => {
        this.assertNoUnexpectedExit();
        const views = await Promise.all((nodes ?? this.responsive()).map((n) => n.configuration()));
        last = views.map((v) => (v === null ? 'no answer' : `${v.id}: voters=${v.voters.join(',')} out=${v.votersOutgoing.join(',')} learners=${v.learners.join(',')} pending=${v.pending}`)).join('; ');
        const isDone = views.every((v) => v !== null && !v.pending && !v.joint && same(v.voters, expected.voters) && same(v.learners, expected.learners ?? []));
        return isDone ? true : undefined;
      });
    } catch (err) {
      throw new Error(`${(err as Error).message} (last seen: ${last})`);
    }
  }

  /** Waits until `node` has applied at least `index`. */
  async waitApplied(node: ProcessNode, index: number, timeoutMs = 20_000): Promise<NodeStatus> {
    return pollUntil(`${node.id} to apply index ${index}`, timeoutMs, async () => {
      const s = await node.status();
      return s !== null && s.appliedIndex >= index ? s : undefined;
    });
  }

  /**
   * Stops every running node: `signal`, then SIGKILL for any still running after `graceMs` (a
   * clean SIGTERM lets a node flush, and write its CPU profile).
   */
  async stopAll(signal: 'SIGKILL' | 'SIGTERM', graceMs = 10_000): Promise<void> {
    await Promise.all(this.allNodes.filter((n) => n.isRunning).map((n) => n.stop(signal, graceMs).catch(() => undefined)));
  }

  /** Kills every node with SIGKILL and removes the root. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.stopAll('SIGKILL');
    removeTempDir(this.root);
  }

  /** One line per node: running or its exit, and the tail of stderr. For failure messages. */
  describe(): string {
    return this.slots
      .map((n) => `${n.id}: ${n.isRunning ? 'running' : `exited ${JSON.stringify(n.lastExit)}`}${n.stderr ? ` stderr: ${n.stderr.trim().slice(0, 400)}` : ''}`)
      .join('; ');
  }

  /** Throws when a node exited without being stopped or expected to: waiting longer cannot help. */
  assertNoUnexpectedExit(): void {
    const crashed = this.slots.filter((n) => n.hasCrashed);
    if (crashed.length > 0) throw new Error(`${crashed.map((n) => n.id).join(', ')} exited unexpectedly: ${this.describe()}`);
  }
}
