// A throwaway 3-member etcd cluster on 127.0.0.1, for comparison: its defaults for durability
// (fsync of WAL and backend on every commit), quiet logs, data in a fresh temp dir. Load goes
// through etcd's HTTP/JSON gRPC gateway (`POST /v3/kv/put`, base64 key and value), since a gRPC
// client would not be the same light client raftkv is measured with.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { sendJson, targetOf, type HttpRequest } from './http.js';
import { freePorts } from '../../src/transport/free-ports.js';
import { tailLogs, type Child, type Resources } from './processes.js';
import { keyName } from './raftkv-cluster.js';
import type { SystemUnderTest, Workload } from './system.js';

/** The etcd binary: an explicit path, else the first `etcd` on PATH, else /usr/bin/etcd; null when absent. */
export function findEtcd(explicit: string | undefined): string | null {
  const candidates = explicit !== undefined && explicit !== ''
    ? [explicit]
    : [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'etcd')), '/usr/bin/etcd'];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

export interface EtcdClusterOptions {
  readonly binary: string;
  readonly members: number;
  readonly leaderTimeoutMs: number;
}

export async function startEtcd(res: Resources, o: EtcdClusterOptions): Promise<SystemUnderTest> {
  const dir = res.tempDir('etcd-bench-');
  const ports = await freePorts(o.members * 2);
  const names = Array.from({ length: o.members }, (_, i) => `e${i + 1}`);
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[i * 2]}`;
  const clientUrl = (i: number): string => `http://127.0.0.1:${ports[i * 2 + 1]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const children: Child[] = names.map((name, i) =>
    res.spawn(`etcd ${name}`, o.binary, [
      '--name', name,
      '--data-dir', join(dir, name),
      '--listen-peer-urls', peerUrl(i),
      '--initial-advertise-peer-urls', peerUrl(i),
      '--listen-client-urls', clientUrl(i),
      '--advertise-client-urls', clientUrl(i),
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `bench-${process.pid}`,
      // Same timing as raftkv's defaults (these are etcd's defaults too).
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      // Every put adds a revision; a run must never hit the 2 GiB default and go read-only.
      '--quota-backend-bytes', String(8 * 1024 ** 3),
      '--logger', 'zap',
      '--log-level', 'error',
    ], { logPath: join(dir, `${name}.log`) }),
  );
  const stop = async (): Promise<void> => {
    await res.stop(children, 3000);
    res.removeDir(dir);
  };
  try {
    const leader = await findLeader(names.map((_, i) => clientUrl(i)), children, o.leaderTimeoutMs);
    return { name: 'etcd', leaderUrl: leader.url, leaderName: leader.name, note: 'etcd via its JSON gRPC gateway (POST /v3/kv/put, base64)', stop };
  } catch (err) {
    const logs = tailLogs(children);
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
}

interface StatusBody {
  readonly leader?: string;
  readonly header?: { readonly member_id?: string };
}
interface MemberListBody {
  readonly members?: readonly { readonly ID?: string; readonly name?: string; readonly clientURLs?: readonly string[] }[];
}

// maintenance/status names the leader by member id; the member list maps that id to a client URL.
async function findLeader(urls: readonly string[], children: readonly Child[], timeoutMs: number): Promise<{ name: string; url: string }> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
    if (dead !== undefined) throw new Error(`${dead.name} exited during startup`);
    for (const url of urls) {
      try {
        const s = await sendJson(targetOf(url), 'POST', '/v3/maintenance/status', {}, 1000);
        const leaderId = (s.json as StatusBody | null)?.leader;
        if (s.status !== 200 || leaderId === undefined || leaderId === '0') {
          lastProblem = `status from ${url}: HTTP ${s.status}, leader ${leaderId ?? 'unknown'}`;
          continue;
        }
        const m = await sendJson(targetOf(url), 'POST', '/v3/cluster/member/list', {}, 1000);
        const member = (m.json as MemberListBody | null)?.members?.find((x) => x.ID === leaderId);
        const leaderUrl = member?.clientURLs?.[0];
        if (member === undefined || leaderUrl === undefined) {
          lastProblem = `leader ${leaderId} is not in the member list yet`;
          continue;
        }
        const probe = await sendJson(targetOf(leaderUrl), 'POST', '/v3/kv/put', { key: b64('bench-ready'), value: '' }, 3000);
        if (probe.status === 200) return { name: member.name ?? leaderId, url: leaderUrl };
        lastProblem = `a put on ${leaderUrl} answered HTTP ${probe.status}`;
      } catch (err) {
        lastProblem = err instanceof Error ? err.message : String(err);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no etcd leader within ${timeoutMs} ms (${lastProblem})`);
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

export function etcdWorkload(keys: number, value: Buffer): Workload {
  const value64 = b64(value);
  const requests: HttpRequest[] = [];
  for (let k = 0; k < keys; k++) {
    requests.push({ method: 'POST', path: '/v3/kv/put', body: Buffer.from(JSON.stringify({ key: b64(keyName(k)), value: value64 })), contentType: 'application/json' });
  }
  return { requests, isOk: (status) => status === 200 };
}
