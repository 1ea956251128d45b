// The cluster under test: the harness's process cluster (src/harness/), each node in its own
// network namespace (netns mode) or on 127.0.0.1 (loopback mode). Process faults act on the
// node's pid (`ip netns exec` execs node in place, so the pid is the node's): SIGKILL then the
// same command again, SIGSTOP then SIGCONT. Membership changes go through the HTTP admin API and
// `serve --join`. A secure cluster (`--secure`) runs every node, joiners included, with TLS on
// both ports and --auth-file, and every request of the harness goes over https with the run's CA
// and admin token; start() proves the nodes really are secure.
import { appendFileSync, rmSync } from 'node:fs';
import type { NodeStatus } from '../client/index.js';
import { errorCode, exchange, pollUntil, ProcessCluster, sleep, type Placement, type ProcessNode } from '../harness/index.js';
import { createNodeNamespace, deleteNamespace } from './netns.js';

/** A node of the run: the harness's process node, in its namespace in netns mode. */
export type NodeProcess = ProcessNode;

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
  /** Every node's --snapshot-entries (with a tenth of it as --snapshot-catch-up-entries); null: the default. */
  readonly snapshotEntries: number | null;
}

/** Small thresholds make snapshots, their saves, installs and compactions frequent under the faults. */
function snapshotArgs(entries: number | null): string[] {
  return entries === null ? [] : ['--snapshot-entries', String(entries), '--snapshot-catch-up-entries', String(Math.max(1, Math.floor(entries / 10)))];
}

const PEER_PORT = 7000;
const CLIENT_PORT = 8000;

export class FaultCluster extends ProcessCluster {
  /** Started with --join and not yet a voter: not a member for the workloads and the nemesis. */
  private readonly joining = new Set<NodeProcess>();

  constructor(readonly config: ClusterConfig) {
    super({ root: config.dataRoot, logDir: config.logDir, heartbeatMs: config.heartbeatMs, electionMs: config.electionMs, secure: config.secure, extraArgs: ['--log-level', 'warn', ...snapshotArgs(config.snapshotEntries)] });
  }

  /** The members as the harness last made them (founders, plus joined, minus removed). */
  get members(): readonly NodeProcess[] {
    return this.nodes.filter((n) => !this.joining.has(n));
  }

  protected override async place(id: string, serial: number): Promise<Placement> {
    if (this.config.netnsPrefix === null) return super.place(id, serial);
    const { ns, address } = await createNodeNamespace(this.config.netnsPrefix, id, serial);
    return { peerAddr: `${address}:${PEER_PORT}`, clientAddr: `${address}:${CLIENT_PORT}`, namespace: ns };
  }

  /** Starts the founding voters and waits until they are healthy (and, in a secure run, secure). */
  async start(): Promise<void> {
    await this.startFounders(this.config.nodes);
    await this.waitHealthy(30_000);
    if (this.security !== null) {
      const problems = (await Promise.all(this.members.map((n) => this.security!.insecurity(n)))).filter((p) => p !== null);
      if (problems.length > 0) throw new Error(`a --secure run on nodes that are not: ${problems.join('; ')}`);
    }
  }

  /**
   * Healthy: every member runs and answers, one leader that all of them name in the same term,
   * the leader's member list is the harness's, and every member applied the leader's commit index.
   */
  async waitHealthy(timeoutMs: number): Promise<void> {
    let why = '';
    await pollUntil('a healthy cluster', timeoutMs, async () => ((why = await this.unhealthyReason()) === '' ? true : undefined), 100).catch(() => {
      throw new Error(`cluster not healthy after ${timeoutMs} ms: ${why}`);
    });
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
      const again = await Promise.all(lagging.map((s) => this.node(s.id).status(1000)));
      if (again.some((s) => s === null || s.appliedIndex < leader.commitIndex)) return `${lagging.map((s) => s.id).join(',')} behind the commit index ${leader.commitIndex}`;
    }
    return '';
  }

  /** Joins a new node (learner, then promoted) and waits until it is a voter. */
  async addNode(timeoutMs = 20_000): Promise<NodeProcess> {
    const via = this.members.find((n) => n.isRunning && !n.isPaused);
    if (via === undefined) throw new Error('no running member to join through');
    const node = await this.addSlot();
    this.joining.add(node);
    this.startJoining(node, via);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.leader();
      const s = leader === null ? null : await leader.status();
      if (s !== null && s.members.some((m) => m.id === node.id && m.role === 'voter')) {
        this.joining.delete(node);
        return node;
      }
      await sleep(100);
    }
    // It never became a voter: take it out again so the cluster stays as the harness knows it.
    this.joining.delete(node);
    await this.removeNode(node, 20_000).catch(() => undefined);
    throw new Error(`${node.id} did not become a voter within ${timeoutMs} ms`);
  }

  /** DELETE /v1/members/{id} (retried while a change is in progress), then stops and erases the node. */
  async removeNode(node: NodeProcess, timeoutMs = 20_000): Promise<void> {
    node.expectExit();
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let isRemoved = false;
    while (Date.now() < deadline && !isRemoved) {
      const others = this.members.filter((n) => n !== node && n.isRunning && !n.isPaused);
      for (const via of others) {
        try {
          const reply = await exchange(via.url, `/v1/members/${encodeURIComponent(node.id)}`, { method: 'DELETE', timeoutMs: 5000, security: this.security?.client ?? null, headers: { 'request-timeout': '4000' } });
          if (reply.status === 200 || reply.status === 404) {
            isRemoved = true;
            break;
          }
          last = `${reply.status} ${errorCode(reply)}`;
        } catch (err) {
          last = (err as Error).message;
        }
      }
      // A 504 may still have gone through: check the configuration itself.
      if (!isRemoved) {
        const leader = await this.leader();
        const s = leader === null || leader === node ? null : await leader.status();
        if (s !== null && !s.members.some((m) => m.id === node.id)) isRemoved = true;
        else await sleep(200);
      }
    }
    if (!isRemoved) throw new Error(`could not remove ${node.id}: ${last}`);
    this.untrack(node);
    await this.retire(node);
  }

  async transferLeader(to: NodeProcess): Promise<string> {
    const via = (await this.leader()) ?? to;
    const reply = await exchange(via.url, '/v1/leader/transfer', { method: 'POST', body: JSON.stringify({ to: to.id }), timeoutMs: 5000, security: this.security?.client ?? null, headers: { 'content-type': 'application/json', 'request-timeout': '4000' } });
    return `${reply.status} ${reply.status === 200 ? reply.body.toString('utf8') : errorCode(reply)}`;
  }

  /** SIGKILLs every node, removes its namespace and the data (node logs are kept). */
  override async destroy(): Promise<void> {
    const members = [...this.members];
    for (const n of members) this.untrack(n);
    await Promise.all(members.map((n) => this.retire(n)));
    await super.destroy();
  }

  private async retire(node: NodeProcess): Promise<void> {
    node.resume();
    // Told once C_new is committed, a removed server stops by itself (its HTTP server gives
    // requests in flight up to 3 s); give it that long.
    if (node.isExpectingExit) {
      const hasLeft = await node.waitExit(6000).then(() => true, () => false);
      appendFileSync(node.logFile, `--- harness: ${node.id} ${hasLeft ? 'stopped by itself after its removal' : 'still running 6 s after its removal; killing it'}\n`);
    }
    await node.kill().catch(() => undefined);
    rmSync(node.dataDir, { recursive: true, force: true });
    if (node.namespace !== null) await deleteNamespace(node.namespace);
  }
}
