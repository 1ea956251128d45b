// A throwaway etcd cluster on 127.0.0.1, for comparison: its defaults for durability (fsync of
// WAL and backend on every commit), quiet logs, data in a fresh temp dir. It is found ready and
// its leader named over native gRPC (Maintenance.Status, Cluster.MemberList, a first KV.Put),
// the same protocol the load then uses (bench/grpc/).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { EtcdChannel, grpcAddress } from '../grpc/etcd-channel.js';
import type { EtcdMemberAddress } from '../grpc/etcd-load.js';
import { freePorts } from '../../src/transport/free-ports.js';
import { tailLogs, type Child, type Resources } from './processes.js';
import type { SystemUnderTest } from './system.js';

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

export interface EtcdCluster extends SystemUnderTest {
  /** Every member, in name order (e1, e2, ...). */
  readonly members: readonly EtcdMemberAddress[];
  /** Index in `members` of the leader found at start. */
  readonly leaderIndex: number;
}

/** The members' processes too, for a benchmark that kills and restarts them. */
export interface EtcdProcesses extends EtcdCluster {
  /** Each member's --data-dir, in name order. */
  readonly dataDirs: readonly string[];
  /** The members' processes now, in name order (restartAll() replaces them). */
  children(): readonly Child[];
  /** SIGKILLs every member at once (a crash, not a stop); resolves once all are gone. */
  killAll(): Promise<void>;
  /** Starts every member again with the same flags and data dirs; does not wait. */
  restartAll(): void;
  /** Waits for every member to be up and a leader that has committed a write. */
  findLeader(timeoutMs: number): Promise<{ members: EtcdMemberAddress[]; leaderIndex: number }>;
}

export function startEtcd(res: Resources, o: EtcdClusterOptions): Promise<EtcdCluster> {
  return startEtcdProcesses(res, o);
}

export async function startEtcdProcesses(res: Resources, o: EtcdClusterOptions): Promise<EtcdProcesses> {
  const dir = res.tempDir('etcd-bench-');
  const ports = await freePorts(o.members * 2);
  const names = Array.from({ length: o.members }, (_, i) => `e${i + 1}`);
  const dataDirs = names.map((name) => join(dir, name));
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[i * 2]}`;
  const clientUrl = (i: number): string => `http://127.0.0.1:${ports[i * 2 + 1]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  // On a restart etcd reads the data dir and ignores the --initial-cluster flags.
  const spawnAll = (): Child[] => names.map((name, i) =>
    res.spawn(`etcd ${name}`, o.binary, [
      '--name', name,
      '--data-dir', dataDirs[i]!,
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
  let children = spawnAll();
  const addresses = names.map((_, i) => grpcAddress(clientUrl(i)));
  const stop = async (): Promise<void> => {
    await res.stop(children, 3000);
    res.removeDir(dir);
  };
  try {
    const found = await findLeader(addresses, children, o.leaderTimeoutMs);
    const leader = found.members[found.leaderIndex]!;
    return {
      name: 'etcd',
      leaderUrl: `http://${leader.address}`,
      leaderName: leader.name,
      note: 'etcd gRPC (etcdserverpb.KV/Put), one HTTP/2 channel per member',
      members: found.members,
      leaderIndex: found.leaderIndex,
      stop,
      dataDirs,
      children: () => children,
      killAll: () => res.kill(children),
      restartAll: () => void (children = spawnAll()),
      findLeader: (timeoutMs) => findLeader(addresses, children, timeoutMs),
    };
  } catch (err) {
    const logs = tailLogs(children);
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
}

// Status names the leader by member id; the member list maps ids to names and client URLs. The
// cluster is ready once every member has started (a name and a client URL) and the leader has
// committed a first write.
async function findLeader(addresses: readonly string[], children: readonly Child[], timeoutMs: number): Promise<{ members: EtcdMemberAddress[]; leaderIndex: number }> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  const channels = addresses.map((a) => new EtcdChannel(a));
  try {
    while (Date.now() < deadline) {
      const dead = children.find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
      if (dead !== undefined) throw new Error(`${dead.name} exited during startup`);
      for (const channel of channels) {
        try {
          const status = await channel.status(1000);
          if (status.leader === '0') {
            lastProblem = `${channel.address} knows no leader yet`;
            continue;
          }
          const list = await channel.memberList(1000);
          const members = list.members
            .filter((m) => m.name !== '' && m.clientURLs.length > 0)
            .map((m) => ({ id: m.ID, name: m.name, address: grpcAddress(m.clientURLs[0]!) }))
            .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
          const leaderIndex = members.findIndex((m) => m.id === status.leader);
          if (members.length !== addresses.length || leaderIndex < 0) {
            lastProblem = `${members.length} of ${addresses.length} members started; leader ${status.leader}`;
            continue;
          }
          const leaderChannel = channels.find((c) => c.address === members[leaderIndex]!.address);
          if (leaderChannel === undefined) throw new Error(`the leader's client address ${members[leaderIndex]!.address} is none of ${addresses.join(', ')}`);
          // Outside the benchmark's keys (bench-NNNNNN), so a read of them back sees only the load's.
          await leaderChannel.put({ key: Buffer.from('bench/ready'), value: Buffer.alloc(0) }, 3000);
          return { members, leaderIndex };
        } catch (err) {
          lastProblem = err instanceof Error ? err.message : String(err);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const c of channels) c.close();
  }
  throw new Error(`no etcd leader within ${timeoutMs} ms (${lastProblem})`);
}
