// A throwaway raftkv cluster on 127.0.0.1 for the benchmark: the harness's process cluster
// (src/harness/) of `raftkv serve` processes with fsync on (the default) and raftkv's default
// timing, data dirs in a fresh temp dir, ready once a leader takes a write. Optionally each node
// writes a V8 CPU profile when it stops.
import { sendJson, targetOf, type HttpRequest } from './http.js';
import { pollUntil, ProcessCluster } from '../../src/harness/index.js';
import { tailLogs, type Resources } from './processes.js';
import type { SystemUnderTest, Workload } from './system.js';

export interface RaftkvClusterOptions {
  /** The compiled `raftkv` entry point (dist…/src/cli/main.js). */
  readonly mainPath: string;
  readonly nodes: number;
  /** Directory for `--cpu-prof` output (one `<id>.cpuprofile` per node), or null for none. */
  readonly profileDir: string | null;
  readonly leaderTimeoutMs: number;
  /** More `serve` flags for every node, after the bench's own (later flags win). @default [] */
  readonly extraArgs?: readonly string[];
  /** Flags for node itself before main.js, for every node (e.g. --import of a probe). @default [] */
  readonly nodeFlags?: readonly string[];
  /** Every node also serves the etcd v3 gRPC API (`--etcd-addr`, ProcessNode.etcdAddr). @default false */
  readonly etcdApi?: boolean;
}

/** The cluster's processes too, for a benchmark that kills and restarts them. */
export interface RaftkvCluster extends SystemUnderTest {
  readonly cluster: ProcessCluster;
}

export function startRaftkv(res: Resources, o: RaftkvClusterOptions): Promise<RaftkvCluster> {
  return startRaftkvCluster(res, o);
}

export async function startRaftkvCluster(res: Resources, o: RaftkvClusterOptions): Promise<RaftkvCluster> {
  const profileDir = o.profileDir;
  const profileFlags = (id: string): string[] => (profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${id}.cpuprofile`]);
  const cluster = new ProcessCluster({
    root: res.tempDir('raftkv-bench-'),
    mainJs: o.mainPath,
    // raftkv's defaults (and etcd's): both systems are measured with the same timing.
    heartbeatMs: 100,
    electionMs: 1000,
    extraArgs: ['--log-level', 'warn', ...(o.extraArgs ?? [])],
    nodeFlags: (id: string) => [...(o.nodeFlags ?? []), ...profileFlags(id)],
    etcdApi: o.etcdApi === true,
  });
  const stop = async (): Promise<void> => {
    withdraw();
    // Generous grace: a node flushes, closes and (when profiling) writes its profile on SIGTERM.
    await cluster.stopAll('SIGTERM', profileDir === null ? 3000 : 15_000);
    res.removeDir(cluster.root);
  };
  const withdraw = res.defer(stop);
  try {
    await cluster.startFounders(o.nodes);
    // A leader that can already commit (its no-op applied) is ready for load.
    const leader = await pollUntil('a raftkv leader that takes a write', o.leaderTimeoutMs, async () => {
      cluster.assertNoUnexpectedExit();
      const l = await cluster.leader();
      return l !== null && (await canWrite(l.url)) ? l : undefined;
    }, 100);
    return { name: 'raftkv', leaderUrl: leader.url, leaderName: leader.id, note: 'raftkv HTTP API (PUT /v1/kv/{key})', stop, cluster };
  } catch (err) {
    const logs = tailLogs(cluster.allNodes.map((n) => ({ name: `raftkv ${n.id}`, logPath: n.logFile })));
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
}

async function canWrite(url: string): Promise<boolean> {
  try {
    return (await sendJson(targetOf(url), 'PUT', '/v1/kv/bench-ready', undefined, 3000)).status === 200;
  } catch {
    return false;
  }
}

export function raftkvWorkload(keys: number, value: Buffer): Workload {
  const requests: HttpRequest[] = [];
  for (let k = 0; k < keys; k++) requests.push({ method: 'PUT', path: `/v1/kv/${keyName(k)}`, body: value, contentType: 'application/octet-stream' });
  return { requests, isOk: (status) => status === 200 };
}

export function keyName(k: number): string {
  return `bench-${String(k).padStart(6, '0')}`;
}
