// `raftkv cluster`: a local multi-process cluster for development and demos (what `npm start`
// runs). Starts N `raftkv serve` children on 127.0.0.1, prints their endpoints and every change
// of leader, keeps data in --dir across runs, restarts a child that dies, and turns Ctrl-C into
// a clean SIGTERM shutdown of every node. With --secure the nodes serve HTTPS, speak mutual TLS
// to each other and want tokens (cluster-secure.ts makes the CA, certificates and tokens).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftKvClient } from '../client/index.js';
import { prepareSecureFiles, secureHints, secureServeArgs, SecureSetupError, shellQuote, type SecureFiles } from './cluster-secure.js';
import { intFlag, optionalString, parseFlags, UsageError, type FlagSpec } from './flags.js';

const SPEC: FlagSpec = {
  nodes: { type: 'string' },
  dir: { type: 'string' },
  'base-port': { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'election-ms': { type: 'string' },
  'log-level': { type: 'string' },
  secure: { type: 'boolean' },
  etcd: { type: 'boolean' },
};

export interface Io {
  stdout(s: string): void;
  stderr(s: string): void;
}

/** One node of the cluster as planned: what to run and where it answers. */
export interface MemberPlan {
  readonly id: string;
  readonly clientUrl: string;
  /** HOST:PORT of the etcd v3 gRPC API (--etcd), or null. */
  readonly etcdAddr: string | null;
  /** Arguments for `node`, starting with main.js. */
  readonly args: string[];
  readonly logPath: string;
}

interface Member extends MemberPlan {
  child: ChildProcess | null;
  restarts: number[];
}

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface PlanOptions {
  readonly nodes: number;
  readonly basePort: number;
  /** Absolute. */
  readonly dir: string;
  /** Flags passed to every `serve` as they are (timing, log level). */
  readonly passThrough: readonly string[];
  /** TLS and tokens for every node, or null for the plain demo. */
  readonly secure: SecureFiles | null;
  /** Every node also serves the etcd v3 gRPC API, on ports base+201... @default false */
  readonly etcd?: boolean;
}

export function nodeIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `n${i + 1}`);
}

/** The members' `serve` command lines: ports base+1.. for clients, base+101.. for peers, base+201.. for etcd's API. Pure. */
export function planMembers(o: PlanOptions): MemberPlan[] {
  const ids = nodeIds(o.nodes);
  const peer = (i: number): string => `127.0.0.1:${o.basePort + 100 + i + 1}`;
  const client = (i: number): string => `127.0.0.1:${o.basePort + i + 1}`;
  const etcd = (i: number): string | null => (o.etcd === true ? `127.0.0.1:${o.basePort + 200 + i + 1}` : null);
  const initialCluster = ids.map((id, i) => `${id}=${peer(i)}`).join(',');
  return ids.map((id, i) => ({
    id,
    clientUrl: `${o.secure === null ? 'http' : 'https'}://${client(i)}`,
    etcdAddr: etcd(i),
    logPath: resolve(o.dir, `${id}.log`),
    args: [
      MAIN, 'serve', '--id', id, '--data-dir', resolve(o.dir, id), '--peer-addr', peer(i), '--client-addr', client(i), '--initial-cluster', initialCluster,
      ...(etcd(i) !== null ? ['--etcd-addr', etcd(i)!] : []),
      ...o.passThrough,
      ...(o.secure === null ? [] : secureServeArgs(o.secure, id)),
    ],
  }));
}

export async function runCluster(argv: string[], io: Io): Promise<number> {
  const flags = parseFlags(argv, SPEC);
  const n = intFlag(flags, 'nodes', 3, 1, 9);
  const basePort = intFlag(flags, 'base-port', 7000, 1024, 65000);
  const dir = resolve(optionalString(flags, 'dir') ?? './data');
  const isSecure = flags.values['secure'] === true;
  const isEtcd = flags.values['etcd'] === true;
  if (flags.positionals.length > 0) throw new UsageError(`cluster takes no arguments, got "${flags.positionals[0]}"`);
  const passThrough: string[] = [];
  for (const f of ['heartbeat-ms', 'election-ms', 'log-level']) {
    const v = optionalString(flags, f);
    if (v !== undefined) passThrough.push(`--${f}`, v);
  }
  let secure: SecureFiles | null = null;
  try {
    if (isSecure) secure = prepareSecureFiles(dir, nodeIds(n));
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    io.stderr(`raftkv: ${err instanceof SecureSetupError ? err.message : `cannot prepare ${dir}: ${err instanceof Error ? err.message : String(err)}`}\n`);
    return 1;
  }
  const members: Member[] = planMembers({ nodes: n, basePort, dir, passThrough, secure, etcd: isEtcd }).map((m) => ({ ...m, child: null, restarts: [] }));

  let stopping = false;
  const startMember = (m: Member): void => {
    const log = createWriteStream(m.logPath, { flags: 'a' });
    const child = spawn(process.execPath, m.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.on('data', (chunk: Buffer) => {
      log.write(chunk);
      // A node that refuses to start says why in one line; show it.
      io.stderr(`[${m.id}] ${chunk.toString('utf8').trimEnd()}\n`);
    });
    m.child = child;
    child.on('exit', (code, signal) => {
      m.child = null;
      if (stopping) return;
      if (code === 0) {
        // A clean exit nobody here asked for: removed from the cluster, or stopped on purpose.
        io.stdout(`${m.id} stopped cleanly (exit 0); not restarting it\n`);
        return;
      }
      if (code === 2) {
        // serve refused its flags (its one line is above); the same flags would be refused again.
        io.stderr(`${m.id} refused its flags (exit 2); not restarting it\n`);
        return;
      }
      const now = Date.now();
      m.restarts = m.restarts.filter((t) => now - t < 60_000);
      if (m.restarts.length >= 5) {
        io.stderr(`${m.id} exited (${signal ?? code}) 5 times within a minute; not restarting it (see ${m.logPath})\n`);
        return;
      }
      m.restarts.push(now);
      io.stdout(`${m.id} exited (${signal ?? code}); restarting it in 1 s\n`);
      setTimeout(() => !stopping && startMember(m), 1000).unref();
    });
  };

  io.stdout(`raftkv: starting a ${n}-node cluster${secure !== null ? ' with TLS and tokens' : ''}, data in ${dir}\n`);
  for (const m of members) {
    startMember(m);
    io.stdout(`  ${m.id}  client ${m.clientUrl}${m.etcdAddr !== null ? `  etcd ${m.etcdAddr}` : ''}  logs ${m.logPath}\n`);
  }
  // etcd's Authenticate takes a principal's name as the user and its token as the password.
  if (isEtcd) io.stdout(`etcd v3 API:  etcdctl --endpoints=${members.map((m) => m.etcdAddr).join(',')}${secure !== null ? ` --cacert=${shellQuote(secure.caPath)} --user=app:${secure.appToken}` : ''} put hello world\n`);
  const endpoints = members.map((m) => m.clientUrl);
  if (secure === null) io.stdout(`try:  node ${MAIN} put hello world --endpoints ${endpoints.join(',')}\n`);
  else io.stdout(secureHints(secure, endpoints, MAIN));
  io.stdout('Ctrl-C stops every node cleanly.\n');

  const stopWatch = watchLeader(
    new RaftKvClient({
      endpoints,
      timeoutMs: 1000,
      attemptTimeoutMs: 500,
      retries: 0,
      // The supervisor is an operator: it trusts the demo's CA and uses the admin token.
      ...(secure !== null ? { ca: readFileSync(secure.caPath), token: secure.adminToken } : {}),
    }),
    io,
  );

  return await new Promise<number>((resolveExit) => {
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      stopWatch();
      io.stdout(`\n${signal}: stopping ${n} nodes\n`);
      const alive = members.filter((m) => m.child !== null);
      for (const m of alive) m.child!.kill('SIGTERM');
      const deadline = setTimeout(() => {
        for (const m of members) m.child?.kill('SIGKILL');
      }, 10_000);
      void Promise.all(alive.map((m) => new Promise((r) => (m.child === null ? r(null) : m.child.once('exit', r))))).then(() => {
        clearTimeout(deadline);
        io.stdout('all nodes stopped\n');
        resolveExit(0);
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}

/**
 * Narrates leadership, which is what a person wants to see happen: every second, asks every node
 * for its status and prints `leader: ID (term T)` when the leader or term changes. Returns stop().
 */
export function watchLeader(client: RaftKvClient, io: Io, intervalMs = 1000): () => void {
  let lastLeader = '';
  let isPolling = false;
  const poll = async (): Promise<void> => {
    for (const answer of await client.statusOfAll()) {
      if (!('status' in answer) || answer.status.leader === null) continue;
      const key = `${answer.status.leader}@${answer.status.term}`;
      if (key !== lastLeader) {
        lastLeader = key;
        io.stdout(`leader: ${answer.status.leader} (term ${answer.status.term})\n`);
      }
      return;
    }
  };
  const timer = setInterval(() => {
    // A poll slower than the interval is not stacked on by the next.
    if (isPolling) return;
    isPolling = true;
    void poll()
      .catch(() => undefined)
      .finally(() => (isPolling = false));
  }, intervalMs);
  return () => {
    clearInterval(timer);
    client.close();
  };
}
