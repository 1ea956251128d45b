// The two systems every conformance test runs against, in this order: a real 3-member etcd
// cluster, then a 3-node raftkv cluster serving the etcd v3 API (`serve --etcd-addr`). Both on
// free loopback ports (src/transport/free-ports.ts), data in a temp dir, every wait bounded, and
// stop() kills every process and removes the dir (the harness's exit hook does it too if a test
// file dies first). Members are named n1..n3 in both, so names compare equal.
//
// A test file starts each target once (startTargets) and shares it between its tests: keys are
// made unique per test (uniquePrefix), so tests never see each other's data.
import { findEtcd as findEtcdBinary } from '../../bench/lib/etcd-cluster.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cleanUpOnSignals, ClusterSecurity, GroupChild, makeTempDir, pollUntil, ProcessCluster, removeTempDir, type ProcessNode } from '../../src/harness/index.js';
import { freePorts } from '../../src/transport/free-ports.js';
import { etcdctl, parseJson, stopEveryEtcdctl } from './etcdctl.js';

cleanUpOnSignals();

export type TargetKind = 'etcd' | 'raftkv';
export const TARGET_KINDS = ['etcd', 'raftkv'] as const satisfies readonly TargetKind[];

export interface TargetMember {
  readonly name: string;
  /** http://HOST:PORT the members talk to each other on. */
  readonly peerUrl: string;
  /** HOST:PORT of the member's etcd v3 gRPC API. */
  readonly endpoint: string;
}

/** How a client reaches a secure target: TLS verified against `caPath`, and etcd's user and password. */
export interface TargetCredentials {
  readonly caPath: string;
  readonly user: string;
  readonly password: string;
}

export interface Target {
  readonly kind: TargetKind;
  /** TLS and a login for a secure target; null for a plain one. */
  readonly credentials: TargetCredentials | null;
  /** In member order, n1..n3. */
  readonly members: readonly TargetMember[];
  /** Every member's etcd v3 endpoint (HOST:PORT), for --endpoints and etcd3's hosts. */
  readonly endpoints: readonly string[];
  /** The last lines of every member's log, for a failure message. */
  logs(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;

/** The etcd binary: $ETCD_BIN, else the first `etcd` on PATH, else /usr/bin/etcd. */
export function findEtcd(): string {
  const found = findEtcdBinary(process.env['ETCD_BIN']);
  if (found === null) throw new Error('etcd is not installed (tried $ETCD_BIN, PATH and /usr/bin/etcd): install the Debian package etcd-server (apt-get install etcd-server) or set ETCD_BIN; the conformance tests prove every expectation on etcd first');
  return found;
}

interface EndpointStatus {
  readonly Endpoint: string;
  readonly Status: { readonly header: { readonly member_id: string | number }; readonly leader: string | number; readonly raftTerm?: number };
}

/**
 * Waits until every endpoint answers `endpoint status`, all name the same leader (not 0), and a
 * write through the first endpoint succeeds: the cluster serves reads and writes.
 */
async function waitServing(endpoints: readonly string[], timeoutMs: number, isAlive: () => void, flags: readonly string[] = []): Promise<void> {
  let last = 'no answer yet';
  try {
    await pollUntil('every member to serve with one leader', timeoutMs, async () => {
      isAlive();
      const r = await etcdctl(endpoints, [...flags, '--command-timeout=2s', '-w', 'json', 'endpoint', 'status'], { timeoutMs: 10_000 });
      if (r.code !== 0) {
        last = r.stderr.trim().slice(0, 300);
        return undefined;
      }
      const statuses = parseJson<EndpointStatus[]>(r.stdout);
      const leaders = new Set(statuses.map((s) => String(s.Status.leader)));
      if (statuses.length !== endpoints.length || leaders.size !== 1 || leaders.has('0')) {
        last = `leaders seen: ${[...leaders].join(',')} from ${statuses.length} endpoints`;
        return undefined;
      }
      const put = await etcdctl(endpoints.slice(0, 1), [...flags, '--command-timeout=3s', 'put', 'conformance/ready', 'yes'], { timeoutMs: 10_000 });
      if (put.code !== 0) {
        last = `put: ${put.stderr.trim().slice(0, 300)}`;
        return undefined;
      }
      return true;
    }, 200);
  } catch (err) {
    throw new Error(`${(err as Error).message} (last: ${last})`);
  }
}

function tail(text: string, lines = 8): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n    ');
}

/** etcdctl's flags for `credentials`: the CA, and the user unless `withUser` is false. */
export function credentialFlags(credentials: TargetCredentials | null, withUser = true): string[] {
  if (credentials === null) return [];
  return [`--cacert=${credentials.caPath}`, ...(withUser ? [`--user=${credentials.user}:${credentials.password}`] : [])];
}

export interface TargetOptions {
  /** @default 3 */
  readonly size?: number;
  /**
   * TLS on the client port (a CA and certificates made for the target) and logins required:
   * etcd with auth enabled and a user `admin` of role root whose password is a random token;
   * raftkv with --auth-file whose principal `admin` has that token. @default false
   */
  readonly secure?: boolean;
}

/** A 3-member etcd cluster of its default durability, quiet logs, data in a fresh temp dir. */
export async function startEtcdTarget(options: TargetOptions = {}): Promise<Target> {
  const size = options.size ?? 3;
  const binary = findEtcd();
  const dir = makeTempDir('etcd-conformance');
  // The harness's PKI serves etcd too: a CA, and a certificate per member naming 127.0.0.1.
  const pki = options.secure === true ? new ClusterSecurity(join(dir, 'pki')) : null;
  const scheme = pki === null ? 'http' : 'https';
  const ports = await freePorts(size * 2);
  const names = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[i * 2]}`;
  const endpoint = (i: number): string => `127.0.0.1:${ports[i * 2 + 1]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const logs = names.map(() => '');
  const token = `conformance-${process.pid}-${randomBytes(4).toString('hex')}`;
  const children = names.map((name, i) =>
    new GroupChild(binary, [
      '--name', name,
      '--data-dir', join(dir, name),
      '--listen-peer-urls', peerUrl(i),
      '--initial-advertise-peer-urls', peerUrl(i),
      '--listen-client-urls', `${scheme}://${endpoint(i)}`,
      '--advertise-client-urls', `${scheme}://${endpoint(i)}`,
      ...(pki === null ? [] : ['--cert-file', pki.certificate(name).cert, '--key-file', pki.certificate(name).key]),
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      // raftkv's test clusters elect fast too; a lease's minimum TTL follows (1.5 election timeouts).
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-level', 'warn',
    ], { logFile: join(dir, `${name}.log`), onStderr: (s) => (logs[i] = (logs[i]! + s).slice(-20_000)) }),
  );
  const members = names.map((name, i) => ({ name, peerUrl: peerUrl(i), endpoint: endpoint(i) }));
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.stop('SIGKILL', 0).catch(() => undefined)));
    removeTempDir(dir);
  };
  const credentials = pki === null ? null : { caPath: pki.ca.cert, user: 'admin', password: pki.adminToken };
  const target: Target = {
    kind: 'etcd',
    credentials,
    members,
    endpoints: members.map((m) => m.endpoint),
    logs: () => names.map((n, i) => `  ${n}:\n    ${tail(logs[i]!) || '(empty log)'}`).join('\n'),
    stop,
  };
  try {
    await waitServing(target.endpoints, START_TIMEOUT_MS, () => {
      const dead = children.findIndex((c) => !c.isRunning);
      if (dead >= 0) throw new Error(`etcd ${names[dead]} exited during startup (${children[dead]!.spawnError?.message ?? JSON.stringify(children[dead]!.exit)})`);
    }, credentialFlags(credentials, false));
    if (credentials !== null) await enableAuth(target.endpoints, credentials);
  } catch (err) {
    const message = `etcd cluster did not start: ${(err as Error).message}\n${target.logs()}`;
    await stop();
    throw new Error(message);
  }
  return target;
}

/** etcd's auth turned on: a root user (etcd requires one), and `admin` with the root role. */
async function enableAuth(endpoints: readonly string[], credentials: TargetCredentials): Promise<void> {
  const tls = credentialFlags(credentials, false);
  const rootPassword = randomBytes(16).toString('hex');
  for (const args of [
    ['user', 'add', 'root', `--new-user-password=${rootPassword}`],
    ['user', 'grant-role', 'root', 'root'],
    ['user', 'add', credentials.user, `--new-user-password=${credentials.password}`],
    ['user', 'grant-role', credentials.user, 'root'],
    ['auth', 'enable'],
  ]) {
    const r = await etcdctl(endpoints, [...tls, ...args]);
    if (r.code !== 0) throw new Error(`etcdctl ${args.slice(0, 2).join(' ')}: ${r.stderr.trim().slice(-300)}`);
  }
}

/** The etcd v3 address of a raftkv node (ProcessNode.etcdAddr, set by the harness's `etcdApi`). */
function etcdAddrOf(node: ProcessNode): string {
  if (node.etcdAddr === null) throw new Error(`raftkv node ${node.id} serves no etcd v3 API (ProcessNode.etcdAddr is null)`);
  return node.etcdAddr;
}

/** A 3-node raftkv cluster with the etcd v3 API on every node (`serve --etcd-addr`). */
export async function startRaftkvTarget(options: TargetOptions = {}): Promise<Target> {
  const size = options.size ?? 3;
  const root = makeTempDir('raftkv-etcd-conformance');
  const cluster = new ProcessCluster({ root, etcdApi: true, secure: options.secure === true });
  // The harness's auth file has one principal, `admin`; etcd's Authenticate takes its token as the password.
  const credentials = cluster.security === null ? null : { caPath: cluster.security.ca.cert, user: 'admin', password: cluster.security.adminToken };
  const stop = async (): Promise<void> => {
    await cluster.destroy();
  };
  try {
    await cluster.startFounders(size);
    await cluster.waitForReady(START_TIMEOUT_MS);
    const members = cluster.nodes.map((n) => ({ name: n.id, peerUrl: `http://${n.peerAddr}`, endpoint: etcdAddrOf(n) }));
    const target: Target = {
      kind: 'raftkv',
      credentials,
      members,
      endpoints: members.map((m) => m.endpoint),
      logs: () => cluster.nodes.map((n) => `  ${n.id}:\n    ${tail(n.stderr) || '(empty stderr)'}`).join('\n'),
      stop,
    };
    await waitServing(target.endpoints, START_TIMEOUT_MS, () => cluster.assertNoUnexpectedExit(), credentialFlags(credentials));
    return target;
  } catch (err) {
    const message = `raftkv cluster with the etcd API did not start: ${(err as Error).message}\n${cluster.describe()}`;
    await stop();
    throw new Error(message);
  }
}

/**
 * One target of each kind for a test file, each started on first use and shared by the file's
 * tests; stopAll() (in the file's after hook) stops whatever was started. A target that failed to
 * start fails every test that asks for it, with the reason.
 */
export class Targets {
  private readonly started = new Map<TargetKind, Promise<Target>>();

  constructor(private readonly options: TargetOptions = {}) {}

  get(kind: TargetKind): Promise<Target> {
    let target = this.started.get(kind);
    if (target === undefined) {
      target = kind === 'etcd' ? startEtcdTarget(this.options) : startRaftkvTarget(this.options);
      // Kept for every later test, which then fails with the same reason without retrying.
      target.catch(() => undefined);
      this.started.set(kind, target);
    }
    return target;
  }

  /** Stops every etcdctl still running (a test that timed out left it), then every target. */
  async stopAll(): Promise<void> {
    stopEveryEtcdctl();
    await Promise.all([...this.started.values()].map(async (t) => (await t.catch(() => null))?.stop()));
    this.started.clear();
  }
}

let prefixes = 0;
/** A key prefix no other test of this run uses: `/conf/<n>-<random>/`. */
export function uniquePrefix(label: string): string {
  prefixes++;
  return `/conf/${label}-${prefixes}-${randomBytes(3).toString('hex')}/`;
}
