// A throwaway 3-node raftkv cluster on 127.0.0.1 for the benchmark: one `raftkv serve` process
// per node (fsync on, the default), data dirs in a fresh temp dir, found leader by asking every
// node's /v1/status. Optionally each node writes a V8 CPU profile when it stops.
import { join } from 'node:path';
import { sendJson, targetOf, type HttpRequest } from './http.js';
import { freePorts } from '../../src/transport/free-ports.js';
import { tailLogs, type Child, type Resources } from './processes.js';
import type { SystemUnderTest, Workload } from './system.js';

export interface RaftkvClusterOptions {
  /** The compiled `raftkv` entry point (dist…/src/cli/main.js). */
  readonly mainPath: string;
  readonly nodes: number;
  /** Directory for `--cpu-prof` output (one `<id>.cpuprofile` per node), or null for none. */
  readonly profileDir: string | null;
  readonly leaderTimeoutMs: number;
}

export async function startRaftkv(res: Resources, o: RaftkvClusterOptions): Promise<SystemUnderTest> {
  const dir = res.tempDir('raftkv-bench-');
  const ports = await freePorts(o.nodes * 2);
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
  const peer = (i: number): string => `127.0.0.1:${ports[i * 2]}`;
  const client = (i: number): string => `http://127.0.0.1:${ports[i * 2 + 1]}`;
  const initialCluster = ids.map((id, i) => `${id}=${peer(i)}`).join(',');
  const children: Child[] = ids.map((id, i) => {
    const nodeFlags = o.profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', o.profileDir, '--cpu-prof-name', `${id}.cpuprofile`];
    const args = [
      ...nodeFlags, o.mainPath, 'serve', '--id', id, '--data-dir', join(dir, id), '--peer-addr', peer(i), '--client-addr', client(i).slice('http://'.length),
      '--initial-cluster', initialCluster, '--heartbeat-ms', '100', '--election-ms', '1000', '--log-level', 'warn',
    ];
    return res.spawn(`raftkv ${id}`, process.execPath, args, { logPath: join(dir, `${id}.log`) });
  });

  const stop = async (): Promise<void> => {
    // Generous grace: a node flushes, closes and (when profiling) writes its profile on SIGTERM.
    await res.stop(children, o.profileDir === null ? 3000 : 15_000);
    res.removeDir(dir);
  };
  try {
    const leader = await findLeader(ids, ids.map((_, i) => client(i)), children, o.leaderTimeoutMs);
    return { name: 'raftkv', leaderUrl: leader.url, leaderName: leader.id, note: 'raftkv HTTP API (PUT /v1/kv/{key})', stop };
  } catch (err) {
    const logs = tailLogs(children);
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
}

async function findLeader(ids: readonly string[], urls: readonly string[], children: readonly Child[], timeoutMs: number): Promise<{ id: string; url: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
    if (dead !== undefined) throw new Error(`${dead.name} exited during startup`);
    for (let i = 0; i < urls.length; i++) {
      try {
        const s = await sendJson(targetOf(urls[i]!), 'GET', '/v1/status', undefined, 500);
        const body = s.json as { role?: string } | null;
        // A leader that can already commit (its no-op applied) is ready for load.
        if (s.status === 200 && body?.role === 'leader' && (await canWrite(urls[i]!))) return { id: ids[i]!, url: urls[i]! };
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no raftkv leader within ${timeoutMs} ms`);
}

async function canWrite(url: string): Promise<boolean> {
  const r = await sendJson(targetOf(url), 'PUT', '/v1/kv/bench-ready', undefined, 3000);
  return r.status === 200;
}

export function raftkvWorkload(keys: number, value: Buffer): Workload {
  const requests: HttpRequest[] = [];
  for (let k = 0; k < keys; k++) requests.push({ method: 'PUT', path: `/v1/kv/${keyName(k)}`, body: value, contentType: 'application/octet-stream' });
  return { requests, isOk: (status) => status === 200 };
}

export function keyName(k: number): string {
  return `bench-${String(k).padStart(6, '0')}`;
}
