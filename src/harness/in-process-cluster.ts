// N full raftkv nodes in this one process, each started with startNode() (src/server/
// node-server.ts) exactly as `raftkv serve` starts it, from the same flags: real sockets on
// 127.0.0.1, real data dirs under a temp root, real fsync. Only the process boundary is gone, so a node stops and restarts
// in milliseconds and a test may look inside it (its RaftNode, its service). A stop here is
// always a clean one (RunningNode.stop()): kill -9 and SIGSTOP are for process-cluster.ts.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeStatus } from '../client/index.js';
import { parseServeConfig } from '../cli/serve.js';
import { createLogger } from '../server/logger.js';
import { startNode, type NodeConfig, type RunningNode, type StopInfo } from '../server/node-server.js';
import { freePorts } from '../transport/free-ports.js';
import { makeTempDir, removeTempDir } from './cleanup.js';
import { DEFAULT_PROCESS_CLUSTER_OPTIONS } from './process-cluster.js';
import { pollUntil } from './wait.js';

export interface InProcessClusterOptions {
  readonly size: number;
  /** @default 50 */
  readonly heartbeatMs?: number;
  /** @default 300 */
  readonly electionMs?: number;
  /** Names the temp root. @default 'in-process' */
  readonly name?: string;
  /** More `raftkv serve` flags for every node (later flags win); logs go to <root>/<id>.log. @default [] */
  readonly extraArgs?: readonly string[];
}

/** One node's slot: fixed id, addresses and data dir across restarts. */
export class InProcessNode {
  readonly url: string;
  /** The node while it runs; null once stopped. */
  running: RunningNode | null = null;
  /** How the latest incarnation stopped, once it has. */
  lastStop: StopInfo | null = null;

  constructor(
    readonly config: NodeConfig,
    readonly logFile: string,
  ) {
    this.url = `http://${config.clientAddr.host}:${config.clientAddr.port}`;
  }

  get id(): string {
    return this.config.id;
  }

  get isRunning(): boolean {
    return this.running !== null;
  }

  /** The node's own status, as GET /v1/status answers it; null while it is stopped. */
  status(): NodeStatus | null {
    return this.running?.service.status() ?? null;
  }
}

export class InProcessCluster {
  private constructor(
    readonly root: string,
    readonly nodes: readonly InProcessNode[],
  ) {}

  /** Starts `size` founding nodes and waits until they agree on a leader. */
  static async start(options: InProcessClusterOptions): Promise<InProcessCluster> {
    const root = makeTempDir(options.name ?? 'in-process');
    const ports = await freePorts(options.size * 2);
    const ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
    const initialCluster = ids.map((id, i) => `${id}=127.0.0.1:${ports[2 * i]}`).join(',');
    const nodes = ids.map((id, i) => {
      const args = [
        '--id', id, '--data-dir', join(root, id), '--peer-addr', `127.0.0.1:${ports[2 * i]}`, '--client-addr', `127.0.0.1:${ports[2 * i + 1]}`,
        '--initial-cluster', initialCluster, '--heartbeat-ms', String(options.heartbeatMs ?? DEFAULT_PROCESS_CLUSTER_OPTIONS.heartbeatMs), '--election-ms', String(options.electionMs ?? DEFAULT_PROCESS_CLUSTER_OPTIONS.electionMs),
        ...(options.extraArgs ?? []),
      ];
      // No environment: RAFTKV_* variables of this process must not configure the nodes.
      return new InProcessNode(parseServeConfig(args, {}), join(root, `${id}.log`));
    });
    const cluster = new InProcessCluster(root, nodes);
    try {
      await Promise.all(nodes.map((n) => cluster.startNode(n)));
      await cluster.waitForLeader(15_000);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  node(id: string): InProcessNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Starts `node` from its data dir (a restart when it ran before). */
  async startNode(node: InProcessNode): Promise<void> {
    if (node.running !== null) throw new Error(`${node.id} is already running`);
    const write = (line: string): void => appendFileSync(node.logFile, line);
    const running = await startNode(node.config, { notice: (line) => write(`${line}\n`), logger: createLogger(node.config.logLevel, { node: node.id }, write) });
    node.running = running;
    node.lastStop = null;
    // A node also stops on its own (removed from the cluster, a fatal storage error).
    void running.stopped.then((info) => {
      node.lastStop = info;
      if (node.running === running) node.running = null;
    });
  }

  /** Stops `node` cleanly: in-flight requests end, the log is flushed, ports and data dir released. */
  async stopNode(node: InProcessNode): Promise<StopInfo> {
    const running = node.running;
    if (running === null) throw new Error(`${node.id} is not running`);
    const info = await running.stop('stopped by the test');
    node.running = null;
    return info;
  }

  running(): InProcessNode[] {
    return this.nodes.filter((n) => n.isRunning);
  }

  /** Waits until exactly one running node leads and every running node names it, in the same term. */
  async waitForLeader(timeoutMs = 10_000): Promise<InProcessNode> {
    return pollUntil('one leader that every running node agrees on', timeoutMs, async () => {
      const statuses = this.running().map((n) => n.status()!);
      const leaders = statuses.filter((s) => s.role === 'leader');
      if (leaders.length !== 1) return undefined;
      const { id, term } = leaders[0]!;
      return statuses.every((s) => s.leader === id && s.term === term) ? this.node(id) : undefined;
    });
  }

  /** Waits until `node` has applied at least `index`. */
  async waitApplied(node: InProcessNode, index: number, timeoutMs = 10_000): Promise<NodeStatus> {
    return pollUntil(`${node.id} to apply index ${index}`, timeoutMs, async () => {
      const s = node.status();
      return s !== null && s.appliedIndex >= index ? s : undefined;
    });
  }

  /** Stops every running node and removes the data. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all(this.running().map((n) => this.stopNode(n).catch(() => undefined)));
    removeTempDir(this.root);
  }
}
