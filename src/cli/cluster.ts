// `raftkv cluster`: a local multi-process cluster for development and demos (what `npm start`
// runs). Starts N `raftkv serve` children on 127.0.0.1, prints their endpoints and every change
// of leader, keeps data in --dir across runs, restarts a child that dies, and turns Ctrl-C into
// a clean SIGTERM shutdown of every node. It serves the dashboard on 127.0.0.1:--ui-port (default
// the base port) with controls to kill, restart, pause and partition nodes and send writes
// (cluster-ui.ts). With --secure the nodes serve HTTPS, speak mutual TLS
// to each other and want tokens (cluster-secure.ts makes the CA, certificates and tokens).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftKvClient } from '../client/index.js';
import { prepareSecureFiles, secureHints, secureServeArgs, SecureSetupError, shellQuote, type SecureFiles } from './cluster-secure.js';
import { intFlag, optionalString, parseFlags, UsageError, type FlagTable } from './flags.js';
import { DEFAULT_NODE_CONFIG } from '../server/node-config.js';
import { LOG_LEVELS } from '../server/logger.js';
import { ClusterUi, type ClusterControls } from './cluster-ui.js';
import { memberEnv } from './member-env.js';

/** Every flag of `raftkv cluster` (each also from RAFTKV_<NAME>). */
export const CLUSTER_FLAGS: FlagTable = {
  nodes: { type: 'string', value: 'N', description: 'how many nodes, 1-9', default: '3' },
  dir: { type: 'string', value: 'DIR', isFile: true, description: 'data, logs and (with --secure) certificates; kept across runs', default: './data' },
  'base-port': { type: 'string', value: 'PORT', description: 'client ports are BASE+1.., peer ports BASE+101..', default: '7000' },
  'heartbeat-ms': { type: 'string', value: 'MS', description: 'passed to every node\'s serve', default: String(DEFAULT_NODE_CONFIG.heartbeatMs) },
  'election-ms': { type: 'string', value: 'MS', description: 'passed to every node\'s serve', default: String(DEFAULT_NODE_CONFIG.electionMs) },
  'log-level': { type: 'string', value: 'LEVEL', description: 'passed to every node\'s serve', default: 'info', choices: LOG_LEVELS },
  secure: { type: 'boolean', description: 'its own CA, node certificates and tokens: HTTPS, mutual TLS between nodes, bearer tokens' },
  etcd: { type: 'boolean', description: 'also serve the etcd v3 gRPC API on ports BASE+201.. and print an etcdctl line' },
  'ui-port': { type: 'string', value: 'PORT', description: 'loopback port of the dashboard\'s controls (kill, restart, pause, partition, writes)', default: '--base-port' },
  'no-ui': { type: 'boolean', description: 'no dashboard controls' },
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
  /** What the dashboard did to it: stopped stays down until restarted; paused is SIGSTOPped. */
  byHand: 'stopped' | 'paused' | null;
  isPartitioned: boolean;
  /** A restart asked for while it still ran: start it again once it has exited. */
  restartWhenGone: boolean;
  /** The automatic restart after a crash, while it waits its second: a stop or restart cancels it. */
  pendingStart: NodeJS.Timeout | null;
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
      // The dashboard's partition button (cluster-hook.ts), over the IPC channel spawn opens.
      '--cluster-control',
      ...o.passThrough,
      ...(o.secure === null ? [] : secureServeArgs(o.secure, id)),
    ],
  }));
}

export async function runCluster(argv: string[], io: Io): Promise<number> {
  const flags = parseFlags(argv, CLUSTER_FLAGS);
  const n = intFlag(flags, 'nodes', 3, 1, 9);
  const basePort = intFlag(flags, 'base-port', 7000, 1024, 65000);
  const dir = resolve(optionalString(flags, 'dir') ?? './data');
  const isSecure = flags.values['secure'] === true;
  const isEtcd = flags.values['etcd'] === true;
  const uiPort = intFlag(flags, 'ui-port', basePort, 1024, 65535);
  const wantsUi = flags.values['no-ui'] !== true;
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
  const members: Member[] = planMembers({ nodes: n, basePort, dir, passThrough, secure, etcd: isEtcd }).map((m) => ({ ...m, child: null, restarts: [], byHand: null, isPartitioned: false, restartWhenGone: false, pendingStart: null }));

  let stopping = false;
  const startMember = (m: Member): void => {
    if (m.pendingStart !== null) clearTimeout(m.pendingStart);
    m.pendingStart = null;
    const log = createWriteStream(m.logPath, { flags: 'a' });
    const child = spawn(process.execPath, m.args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: memberEnv(process.env) });
    child.stdout!.pipe(log);
    // The node says when it listens; then it learns whom it must not hear.
    child.on('message', (x: unknown) => {
      if (typeof x === 'object' && x !== null && (x as { type?: unknown }).type === 'listening') sendBlocks(m);
    });
    child.on('error', () => undefined);
    child.stderr!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      // A node that refuses to start says why in one line; show it.
      io.stderr(`[${m.id}] ${chunk.toString('utf8').trimEnd()}\n`);
    });
    m.child = child;
    child.on('exit', (code, signal) => {
      // Only the member's current process speaks for it (an older one can exit late).
      if (m.child !== child) return;
      m.child = null;
      if (stopping) return;
      if (m.restartWhenGone) {
        m.restartWhenGone = false;
        m.byHand = null;
        startMember(m);
        return;
      }
      if (m.byHand === 'stopped') return;
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
      m.pendingStart = setTimeout(() => !stopping && startMember(m), 1000);
      m.pendingStart.unref();
    });
  };

  /** Every running member learns the members it must not hear: across the cut, both ways. */
  const blocksOf = (m: Member): string[] => (m.isPartitioned ? members.filter((o) => o !== m).map((o) => o.id) : members.filter((o) => o.isPartitioned).map((o) => o.id));
  function sendBlocks(m: Member): void {
    if (m.child?.connected === true) m.child.send({ type: 'block', peers: blocksOf(m) }, () => undefined);
  }
  const controls: ClusterControls = {
    members: members.map((m) => ({ id: m.id, clientUrl: m.clientUrl })),
    state: (id) => {
      const m = members.find((x) => x.id === id)!;
      if (m.byHand === 'stopped' || m.child === null) return m.byHand === 'stopped' ? 'stopped' : 'starting';
      if (m.byHand === 'paused') return 'paused';
      return m.isPartitioned ? 'partitioned' : 'running';
    },
    stop: (id) => {
      const m = members.find((x) => x.id === id)!;
      m.byHand = 'stopped';
      if (m.pendingStart !== null) clearTimeout(m.pendingStart);
      m.pendingStart = null;
      m.child?.kill('SIGKILL');
      io.stdout(`${id}: kill -9 (from the dashboard)\n`);
      return `kill -9 ${id}`;
    },
    restart: (id) => {
      const m = members.find((x) => x.id === id)!;
      if (m.child !== null) {
        m.restartWhenGone = true;
        m.child.kill('SIGKILL');
      } else {
        m.byHand = null;
        startMember(m);
      }
      io.stdout(`${id}: restarting (from the dashboard)\n`);
      return `restart ${id}`;
    },
    pause: (id) => {
      const m = members.find((x) => x.id === id)!;
      if (m.child === null) return `${id} is not running`;
      m.child.kill('SIGSTOP');
      m.byHand = 'paused';
      return `pause ${id} (SIGSTOP)`;
    },
    resume: (id) => {
      const m = members.find((x) => x.id === id)!;
      if (m.child === null) return `${id} is not running`;
      m.child.kill('SIGCONT');
      if (m.byHand === 'paused') m.byHand = null;
      return `resume ${id} (SIGCONT)`;
    },
    partition: (id) => {
      members.find((x) => x.id === id)!.isPartitioned = true;
      members.forEach(sendBlocks);
      return `partition ${id} from the others`;
    },
    heal: (id) => {
      members.find((x) => x.id === id)!.isPartitioned = false;
      members.forEach(sendBlocks);
      return `heal ${id}`;
    },
    write: async (key, value, count) => {
      const started = Date.now();
      let done = 0;
      let last = '';
      for (let i = 0; i < count; i++) {
        try {
          await writer.put(count === 1 ? key : `${key}/${i}`, value);
          done++;
        } catch (err) {
          last = (err as Error).message;
        }
      }
      return `${done}/${count} writes to ${key}${count > 1 ? '/*' : ''} in ${Date.now() - started} ms${last !== '' ? ` (last error: ${last})` : ''}`;
    },
  };
  const writer = new RaftKvClient({
    endpoints: members.map((m) => m.clientUrl),
    timeoutMs: 3000,
    ...(secure !== null ? { ca: readFileSync(secure.caPath), token: secure.adminToken } : {}),
  });
  let ui: ClusterUi | null = null;
  if (wantsUi) {
    ui = new ClusterUi({ port: uiPort, controls, ...(secure !== null ? { ca: readFileSync(secure.caPath), token: secure.adminToken } : {}) });
    try {
      await ui.listen();
    } catch (err) {
      io.stderr(`raftkv: the dashboard cannot listen on 127.0.0.1:${uiPort} (${(err as Error).message}); going on without it (--ui-port picks another)\n`);
      ui = null;
    }
  }

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
  if (ui !== null) io.stdout(`dashboard: ${ui.url}  (kill, pause, partition nodes and send writes; each node also serves its own /ui/)\n`);
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
      ui?.close();
      writer.close();
      io.stdout(`\n${signal}: stopping ${n} nodes\n`);
      const alive = members.filter((m) => m.child !== null);
      // A paused node must run again to hear its SIGTERM.
      for (const m of alive) if (m.byHand === 'paused') m.child!.kill('SIGCONT');
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
