// The two systems as the scale benchmark (bench/scale.ts) drives them: the same cluster starters,
// clients and load as `npm run bench` (raftkv's RaftKvClient, etcd's gRPC generator), plus what
// only this benchmark needs: each member's memory and data dir, a kill -9 of every member at once
// and a restart with the same flags and data dirs, and one-shot probes over fresh connections
// (a PUT; a member's readiness) that say when a restarted cluster is back.
import { fileURLToPath } from 'node:url';
import { EtcdChannel } from '../grpc/etcd-channel.js';
import { etcdWriter, runEtcdLoad } from '../grpc/etcd-load.js';
import { childEnv, parseMetrics } from '../../src/harness/index.js';
import { envWords } from './flags.js';
import { startEtcdProcesses, type EtcdProcesses } from './etcd-cluster.js';
import { send, sendJson, targetOf } from './http.js';
import type { LoadResult } from './load.js';
import { diskBytes, memberMemory, readHeapSample } from './process-memory.js';
import type { Resources } from './processes.js';
import { startRaftkvCluster, type RaftkvCluster } from './raftkv-cluster.js';
import { startupPhases, type StartupPhase } from './raftkv-startup.js';
import { raftkvMembers, raftkvWriter, runRaftkvLoad, type RaftkvMemberAddress } from './raftkv-load.js';
import type { SystemName } from './report.js';
import type { BenchWriter, Routing } from './workload.js';

/** What one member costs, read at one moment. NaN where a number is not available. */
export interface MemberReading {
  readonly member: string;
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  /** Of the RSS: pages of mapped files (etcd's mmap'd bbolt database), the rest is anonymous. */
  readonly fileRssBytes: number;
  /** raftkv: V8's heapUsed (memory probe); etcd: Go's heap in use (go_memstats_heap_inuse_bytes). */
  readonly heapUsedBytes: number;
  /** raftkv only: ArrayBuffer contents outside the V8 heap (values, snapshots, WAL buffers). */
  readonly arrayBufferBytes: number;
  readonly dataDirBytes: number;
}

/** How far a restarting member is: not answering, serving (its store loaded), or ready (a leader known). */
export type MemberState = 'down' | 'up' | 'ready';

export interface LoadSpec {
  readonly routing: Routing;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly windowMs: number;
  readonly keys: number;
  readonly value: Uint8Array;
}

export interface ScaleSystem {
  readonly name: SystemName;
  /** Member names in a fixed order (n1… / e1…); every index below is into this list. */
  readonly memberNames: readonly string[];
  /** Each member's data dir, in the same order. */
  readonly dataDirs: readonly string[];
  /** Clients all aimed at the member that leads now, and its name. */
  leaderWriter(concurrency: number, keys: number, value: Uint8Array): Promise<{ writer: BenchWriter; leaderIndex: number; leader: string }>;
  /** The benchmark's closed loop against the cluster as it is now (the leader found again). */
  runLoad(spec: LoadSpec): Promise<LoadResult>;
  readings(): Promise<MemberReading[]>;
  /** The highest Raft term any member reports now (NaN if none answers); a rise is an election. */
  raftTerm(): Promise<number>;
  /** SIGKILL to every member at once; resolves once all are gone. */
  killAll(): Promise<void>;
  /**
   * Starts every member again with the same flags and data dirs; does not wait. `arm` (raftkv):
   * from another build's compiled CLI from now on, and with variables added to the environment.
   */
  restartAll(arm?: RestartArm): void;
  /** One PUT through member `i` over a fresh connection; rejects unless it is acknowledged. */
  probeWrite(i: number, value: Uint8Array, timeoutMs: number): Promise<void>;
  probeMember(i: number, timeoutMs: number): Promise<MemberState>;
  /** What the members' own logs say about their latest start (raftkv; etcd logs errors only). */
  startupPhases(spawnedAtWallMs: number): StartupPhase[];
  stop(): Promise<void>;
}

/** How the members of one arm of a restart A/B start (ScaleSystem.restartAll). */
export interface RestartArm {
  /** Another build's compiled CLI, from now on. */
  readonly mainJs?: string;
  /** Variables added to the members' environment for this start only. */
  readonly env?: Readonly<Record<string, string>>;
}

// Outside the benchmark's keys (bench-NNNNNN).
const PROBE_KEY = 'scale-restart-probe';
/** This build's compiled CLI: what the raftkv members run unless told otherwise. */
export const RAFTKV_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MEMORY_PROBE = new URL('./memory-probe.js', import.meta.url).href;

export interface StartOptions {
  readonly leaderTimeoutMs: number;
  /** raftkv only: the compiled CLI. @default the one beside this compiled file */
  readonly raftkvMain?: string;
  /** etcd only. */
  readonly etcdBinary?: string;
}

export async function startScaleRaftkv(res: Resources, o: StartOptions): Promise<ScaleSystem> {
  const sut = await startRaftkvCluster(res, {
    mainPath: o.raftkvMain ?? RAFTKV_MAIN,
    nodes: 3,
    profileDir: null,
    leaderTimeoutMs: o.leaderTimeoutMs,
    // Info: its few lines per start (listening, serving, role changes) and per snapshot time the restart.
    // BENCH_RAFTKV_ARGS: extra `raftkv serve` flags (as for npm run bench), e.g. --wal-segment-bytes N.
    extraArgs: ['--log-level', 'info', ...envWords('BENCH_RAFTKV_ARGS')],
    nodeFlags: ['--import', MEMORY_PROBE],
  });
  return new RaftkvScale(sut);
}

class RaftkvScale implements ScaleSystem {
  readonly name = 'raftkv';
  readonly memberNames: readonly string[];

  readonly dataDirs: readonly string[];

  constructor(private readonly sut: RaftkvCluster) {
    this.memberNames = sut.cluster.nodes.map((n) => n.id);
    this.dataDirs = sut.cluster.nodes.map((n) => n.dataDir);
  }

  private get nodes() {
    return this.sut.cluster.nodes;
  }

  private async current(): Promise<{ members: RaftkvMemberAddress[]; leaderIndex: number }> {
    const leader = await this.sut.cluster.waitForLeader(20_000);
    const members = await raftkvMembers(leader.url);
    const leaderIndex = members.findIndex((m) => m.id === leader.id);
    if (leaderIndex < 0 || members.map((m) => m.id).join() !== this.memberNames.join()) throw new Error(`raftkv members ${members.map((m) => m.id).join(', ')} (leader ${leader.id}) are not ${this.memberNames.join(', ')}`);
    return { members, leaderIndex };
  }

  async leaderWriter(concurrency: number, keys: number, value: Uint8Array): Promise<{ writer: BenchWriter; leaderIndex: number; leader: string }> {
    const { members, leaderIndex } = await this.current();
    return { writer: raftkvWriter({ members, leaderIndex, routing: 'leader', concurrency, keys, value }), leaderIndex, leader: members[leaderIndex]!.id };
  }

  async runLoad(spec: LoadSpec): Promise<LoadResult> {
    return runRaftkvLoad({ ...(await this.current()), ...spec, warmupMs: 0 });
  }

  async readings(): Promise<MemberReading[]> {
    return this.nodes.map((n) => {
      const mem = memberMemory(n.dataDir);
      const heap = readHeapSample(n.dataDir);
      const isCurrent = heap !== null && mem !== null && heap.pid === mem.pid;
      return {
        member: n.id,
        rssBytes: mem?.rssBytes ?? NaN,
        peakRssBytes: mem?.peakRssBytes ?? NaN,
        fileRssBytes: mem?.fileRssBytes ?? NaN,
        heapUsedBytes: isCurrent ? heap.heapUsed : NaN,
        arrayBufferBytes: isCurrent ? heap.arrayBuffers : NaN,
        dataDirBytes: diskBytes(n.dataDir),
      };
    });
  }

  async raftTerm(): Promise<number> {
    const statuses = await Promise.all(this.nodes.map((n) => n.status(3000)));
    return highest(statuses.map((s) => s?.term ?? NaN));
  }

  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
  }

  restartAll(arm: RestartArm = {}): void {
    for (const n of this.nodes) {
      if (arm.mainJs !== undefined) n.useMain(arm.mainJs);
      n.start(undefined, childEnv(arm.env));
    }
  }

  async probeWrite(i: number, value: Uint8Array, timeoutMs: number): Promise<void> {
    const reply = await send(undefined, targetOf(this.nodes[i]!.url), { method: 'PUT', path: `/v1/kv/${PROBE_KEY}`, body: Buffer.from(value), contentType: 'application/octet-stream' }, timeoutMs);
    if (reply.status !== 200) throw new Error(`PUT answered ${reply.status}`);
  }

  async probeMember(i: number, timeoutMs: number): Promise<MemberState> {
    const target = targetOf(this.nodes[i]!.url);
    try {
      // /livez answers as soon as the client port is bound; `starting` until the store is loaded.
      const live = await sendJson(target, 'GET', '/livez', undefined, timeoutMs);
      if (live.status !== 200 || (live.json as { starting?: boolean } | null)?.starting !== false) return 'down';
      return (await sendJson(target, 'GET', '/readyz', undefined, timeoutMs)).status === 200 ? 'ready' : 'up';
    } catch {
      return 'down';
    }
  }

  startupPhases(spawnedAtWallMs: number): StartupPhase[] {
    return this.nodes.flatMap((n) => startupPhases(n.id, n.logFile, spawnedAtWallMs));
  }

  stop(): Promise<void> {
    return this.sut.stop();
  }
}

export async function startScaleEtcd(res: Resources, o: StartOptions): Promise<ScaleSystem> {
  if (o.etcdBinary === undefined) throw new Error('no etcd binary');
  return new EtcdScale(await startEtcdProcesses(res, { binary: o.etcdBinary, members: 3, leaderTimeoutMs: o.leaderTimeoutMs }));
}

class EtcdScale implements ScaleSystem {
  readonly name = 'etcd';
  readonly memberNames: readonly string[];

  readonly dataDirs: readonly string[];

  constructor(private readonly sut: EtcdProcesses) {
    this.memberNames = sut.members.map((m) => m.name);
    this.dataDirs = sut.dataDirs;
  }

  private address(i: number): string {
    return this.sut.members[i]!.address;
  }

  async leaderWriter(_concurrency: number, keys: number, value: Uint8Array): Promise<{ writer: BenchWriter; leaderIndex: number; leader: string }> {
    const { members, leaderIndex } = await this.sut.findLeader(20_000);
    return { writer: etcdWriter({ members, keys, value }), leaderIndex, leader: members[leaderIndex]!.name };
  }

  async runLoad(spec: LoadSpec): Promise<LoadResult> {
    return runEtcdLoad({ ...(await this.sut.findLeader(20_000)), ...spec, warmupMs: 0 });
  }

  async readings(): Promise<MemberReading[]> {
    return Promise.all(this.sut.members.map(async (m, i) => {
      const dataDir = this.dataDirs[i]!;
      const mem = memberMemory(dataDir);
      return {
        member: m.name,
        rssBytes: mem?.rssBytes ?? NaN,
        peakRssBytes: mem?.peakRssBytes ?? NaN,
        fileRssBytes: mem?.fileRssBytes ?? NaN,
        heapUsedBytes: await goHeapInUse(m.address),
        arrayBufferBytes: NaN,
        dataDirBytes: diskBytes(dataDir),
      };
    }));
  }

  async raftTerm(): Promise<number> {
    return highest(await Promise.all(this.sut.members.map(async (m) => {
      const channel = new EtcdChannel(m.address);
      try {
        return Number((await channel.status(3000)).raftTerm);
      } catch {
        return NaN;
      } finally {
        channel.close();
      }
    })));
  }

  killAll(): Promise<void> {
    return this.sut.killAll();
  }

  restartAll(): void {
    this.sut.restartAll();
  }

  // A fresh channel each time: a channel made before the member listened would wait out
  // grpc-js's reconnect backoff (a second and more) and make the restart look slower than it is.
  async probeWrite(i: number, value: Uint8Array, timeoutMs: number): Promise<void> {
    const channel = new EtcdChannel(this.address(i));
    try {
      await channel.put({ key: Buffer.from(PROBE_KEY), value }, timeoutMs);
    } finally {
      channel.close();
    }
  }

  async probeMember(i: number, timeoutMs: number): Promise<MemberState> {
    const channel = new EtcdChannel(this.address(i));
    try {
      return (await channel.status(timeoutMs)).leader === '0' ? 'up' : 'ready';
    } catch {
      return 'down';
    } finally {
      channel.close();
    }
  }

  startupPhases(): StartupPhase[] {
    return [];
  }

  stop(): Promise<void> {
    return this.sut.stop();
  }
}

function highest(terms: readonly number[]): number {
  const known = terms.filter((t) => Number.isFinite(t));
  return known.length === 0 ? NaN : Math.max(...known);
}

async function goHeapInUse(address: string): Promise<number> {
  try {
    const reply = await send(undefined, targetOf(`http://${address}`), { method: 'GET', path: '/metrics' }, 3000);
    return parseMetrics(reply.body.toString('utf8')).get('go_memstats_heap_inuse_bytes') ?? NaN;
  } catch {
    return NaN;
  }
}
