// The one check every attack of the adversary suite ends with (issue 9, "Proof"): after it, the
// cluster is exactly as an honest history would leave it. Every node still runs; one leader, that
// all agree on; terms sane (no jump of more than a few elections, far below MAX_TERM = 2^48, so
// every node can still encode its next term); every acknowledged write readable with its value
// through every node; and nothing foreign applied: no key an attack tried to write exists, the
// members and the configuration are the ones the suite started with, and no id an attack used is
// heard on any peer port (a registry record for it would make it "a server being added").
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MAX_TERM } from '../../src/raft/types.js';
import type { DropReason } from '../../src/raft/index.js';
import type { TestCluster, TestNode } from '../cluster/harness.js';
import { pollUntil } from '../cluster/harness.js';
import { http, type ConfigurationJson, type KvRecordJson, type NodeStatus } from '../cluster/http.js';
import { HostilePeer, hello, peerPort, type PeerTls } from './hostile-peer.js';

/** A few elections' worth: an attack may cost an election or two, never a runaway term. */
export const MAX_TERM_JUMP = 10;
export const LEDGER_PREFIX = 'ledger/';

interface Baseline {
  readonly clusterId: string;
  readonly members: string;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

/** What the suite wrote and what attacks tried to do, to be checked after each attack. */
export class Ledger {
  /** key → value of every write that answered 200. */
  readonly acknowledged = new Map<string, string>();
  /** Keys whose write failed: they may or may not exist (an unknown outcome is not a lie). */
  readonly unsure = new Set<string>();
  /** Keys an attack tried to write: they must never exist. */
  readonly foreignKeys = new Set<string>();
  /** Ids an attack spoke as or tried to register: none may be heard on a peer port. */
  readonly attackerIds = new Set<string>();
  /** The highest term seen at the last check. */
  term = 0;
  private seq = 0;
  private baseline: Baseline | null = null;
  private readonly run = randomBytes(3).toString('hex');

  constructor(
    readonly cluster: TestCluster,
    /** With peer TLS: what the attacker-id probes dial with (a certificate of the cluster's CA). */
    readonly peerTls?: PeerTls,
  ) {}

  /** Takes the baseline (members, configuration, cluster id, term) and writes `writes` keys. */
  static async open(cluster: TestCluster, options: { writes?: number; peerTls?: PeerTls } = {}): Promise<Ledger> {
    const ledger = new Ledger(cluster, options.peerTls);
    await ledger.rebaseline();
    await ledger.writeSome(options.writes ?? 5);
    return ledger;
  }

  get clusterId(): string {
    if (this.baseline === null) throw new Error('no baseline yet');
    return this.baseline.clusterId;
  }

  /** Takes the current members and configuration as what must hold from now on (after a deliberate change). */
  async rebaseline(): Promise<void> {
    const leader = await this.cluster.waitForLeader(10_000);
    // The first leader commits the cluster id shortly after it is elected (identity.ts).
    const status = await pollUntil('the leader to commit the cluster id', 10_000, async () => {
      const s = (await http(leader.url, '/v1/status')).json<NodeStatus>();
      return s.clusterId !== null ? s : undefined;
    });
    const config = await leader.configuration();
    assert.ok(status.clusterId !== null && config !== null, 'the leader has a cluster id and answers its configuration');
    this.baseline = {
      clusterId: status.clusterId,
      members: membersText((await http(leader.url, '/v1/members')).json()),
      voters: [...config.voters].sort(),
      learners: [...config.learners].sort(),
    };
    this.term = Math.max(this.term, status.term);
  }

  /** One write through `via` (default: the nodes in turn); true if acknowledged. */
  async write(via?: TestNode): Promise<boolean> {
    const n = this.seq++;
    const key = `${LEDGER_PREFIX}${this.run}-${String(n).padStart(5, '0')}`;
    const value = `v${n}-${randomBytes(6).toString('hex')}`;
    const nodes = this.cluster.nodes.filter((x) => x.isRunning);
    const node = via ?? nodes[n % nodes.length]!;
    try {
      const reply = await http(node.url, `/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value, timeoutMs: 8000 });
      if (reply.status === 200) {
        this.acknowledged.set(key, value);
        return true;
      }
    } catch {
      // Unknown outcome: below.
    }
    this.unsure.add(key);
    return false;
  }

  /** `n` writes that must all be acknowledged. */
  async writeSome(n: number, via?: TestNode): Promise<void> {
    for (let i = 0; i < n; i++) assert.ok(await this.write(via), `write ${i + 1} of ${n} through ${via?.id ?? 'the nodes in turn'} was acknowledged`);
  }

  get snapshot(): Baseline {
    if (this.baseline === null) throw new Error('no baseline yet');
    return this.baseline;
  }
}

function membersText(body: Record<string, unknown>): string {
  const members = (body['members'] as { id: string }[]).slice().sort((a, b) => a.id.localeCompare(b.id));
  return JSON.stringify(members);
}

/**
 * Throws, with the evidence, unless the cluster is unharmed (see the header). Every wait is
 * bounded; the whole check takes well under a second on a healthy cluster.
 */
export async function assertUnharmed(ledger: Ledger, what = 'the attack'): Promise<void> {
  const cluster = ledger.cluster;
  const base = ledger.snapshot;
  const after = `after ${what}`;
  // Every node still runs: an exit nobody asked for is the worst outcome of all.
  cluster.assertNoUnexpectedExit();
  const down = cluster.nodes.filter((n) => !n.isRunning || n.isPaused);
  assert.deepEqual(down.map((n) => n.id), [], `${after}: every node runs (${cluster.describe()})`);

  // One leader that every node names, in the same term.
  const leader = await cluster.waitForLeader(10_000);

  // Terms sane.
  const statuses = await Promise.all(cluster.nodes.map(async (n) => (await http(n.url, '/v1/status')).json<NodeStatus>()));
  const highest = Math.max(...statuses.map((s) => s.term));
  assert.ok(highest < MAX_TERM, `${after}: a term of ${highest} is at or past MAX_TERM`);
  assert.ok(highest <= ledger.term + MAX_TERM_JUMP, `${after}: the term jumped from ${ledger.term} to ${highest}`);
  ledger.term = highest;
  for (const s of statuses) assert.equal(s.clusterId, base.clusterId, `${after}: ${s.id} still names its cluster`);

  // The configuration and the members are the ones the suite knows of.
  let lastView = '';
  try {
    await pollUntil(`the configuration voters=[${base.voters.join(',')}] learners=[${base.learners.join(',')}] on every node ${after}`, 5000, async () => {
      const views = await Promise.all(cluster.nodes.map((n) => n.configuration()));
      lastView = JSON.stringify(views.map((v) => v && { id: v.id, voters: v.voters, learners: v.learners, pending: v.pending }));
      return views.every((v) => v !== null && sameConfig(v, base)) ? true : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message} (last seen: ${lastView})`);
  }
  for (const n of cluster.nodes) {
    assert.equal(membersText((await http(n.url, '/v1/members')).json()), base.members, `${after}: ${n.id} lists the members the suite started with`);
  }

  // Every acknowledged write, with its value, through every node (linearizable: through the leader).
  for (const n of cluster.nodes) {
    const reply = await http(n.url, `/v1/kv?prefix=${encodeURIComponent(LEDGER_PREFIX)}&limit=10000`, { timeoutMs: 8000 });
    assert.equal(reply.status, 200, `${after}: listing the ledger through ${n.id}: ${reply.text.slice(0, 200)}`);
    const items = reply.json<{ items: KvRecordJson[]; more: boolean }>().items;
    const seen = new Map(items.map((r) => [r.key, r.value]));
    for (const [key, value] of ledger.acknowledged) assert.equal(seen.get(key), value, `${after}: the acknowledged write ${key} through ${n.id}`);
    for (const key of seen.keys()) assert.ok(ledger.acknowledged.has(key) || ledger.unsure.has(key), `${after}: ${n.id} holds ${key}, which the suite never wrote`);
  }

  // Nothing foreign applied: not on the leader, and not on any replica.
  for (const key of ledger.foreignKeys) {
    const path = `/v1/kv/${encodeURIComponent(key)}`;
    const onLeader = await http(leader.url, path);
    assert.equal(onLeader.status, 404, `${after}: the foreign key ${JSON.stringify(key)} exists on the leader ${leader.id}: ${onLeader.text.slice(0, 200)}`);
    for (const n of cluster.nodes) {
      const r = await http(n.url, `${path}?consistency=stale`);
      assert.equal(r.status, 404, `${after}: the foreign key ${JSON.stringify(key)} exists on ${n.id}: ${r.text.slice(0, 200)}`);
    }
  }

  // No attacker id is heard on any peer port (no registry record, no membership for it).
  const probes = cluster.nodes.flatMap((n) =>
    [...ledger.attackerIds].map(async (id) => {
      const peer = new HostilePeer(peerPort(n), ledger.peerTls !== undefined ? { tls: ledger.peerTls } : {}).send(hello(id, n.id, base.clusterId));
      try {
        const outcome = await peer.handshake(3000);
        assert.equal(outcome.kind, 'rejected', `${after}: ${n.id} answered a HELLO from the attacker id ${JSON.stringify(id)} with ${JSON.stringify(outcome)}`);
      } finally {
        peer.destroy();
      }
    }),
  );
  await Promise.all(probes);
}

function sameConfig(v: ConfigurationJson, base: Baseline): boolean {
  return !v.pending && !v.joint && JSON.stringify([...v.voters].sort()) === JSON.stringify(base.voters) && JSON.stringify([...v.learners].sort()) === JSON.stringify(base.learners);
}

/** One metric series of `node`, 0 when absent (a labelled counter appears at its first count). */
export async function metric(node: TestNode, series: string): Promise<number> {
  return (await node.metrics()).get(series) ?? 0;
}

/** Many series at once, for before/after comparisons. */
export async function metricsOf(node: TestNode, series: readonly string[]): Promise<Record<string, number>> {
  const all = await node.metrics();
  return Object.fromEntries(series.map((s) => [s, all.get(s) ?? 0]));
}

export const peerRefused = (reason: 'not-member' | 'other-cluster' | 'snapshot-not-leader'): string => `raftkv_peer_refused_total{reason="${reason}"}`;
export const transportRejected = (reason: string): string => `raftkv_transport_connections_rejected_total{reason="${reason}"}`;
export const coreRefused = (reason: DropReason): string => `raftkv_raft_messages_refused_total{reason="${reason}"}`;
