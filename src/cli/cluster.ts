// `raftkv cluster`: a local multi-process cluster for development and demos (what `npm start`
// runs). Starts N `raftkv serve` children on 127.0.0.1, prints their endpoints and every change
// of leader, keeps data in --dir across runs, restarts a child that dies, and turns Ctrl-C into
// a clean SIGTERM shutdown of every node.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intFlag, optionalString, parseFlags, type FlagSpec } from './flags.js';

const SPEC: FlagSpec = {
  nodes: { type: 'string' },
  dir: { type: 'string' },
  'base-port': { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'election-ms': { type: 'string' },
  'log-level': { type: 'string' },
};

export interface Io {
  stdout(s: string): void;
  stderr(s: string): void;
}

interface Member {
  readonly id: string;
  readonly clientUrl: string;
  readonly args: string[];
  readonly logPath: string;
  child: ChildProcess | null;
  restarts: number[];
}

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export async function runCluster(argv: string[], io: Io): Promise<number> {
  const flags = parseFlags(argv, SPEC);
  const n = intFlag(flags, 'nodes', 3, 1, 9);
  const basePort = intFlag(flags, 'base-port', 7000, 1024, 65000);
  const dir = resolve(optionalString(flags, 'dir') ?? './data');
  const passThrough: string[] = [];
  for (const f of ['heartbeat-ms', 'election-ms', 'log-level']) {
    const v = optionalString(flags, f);
    if (v !== undefined) passThrough.push(`--${f}`, v);
  }
  mkdirSync(dir, { recursive: true });

  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const peer = (i: number): string => `127.0.0.1:${basePort + 100 + i + 1}`;
  const client = (i: number): string => `127.0.0.1:${basePort + i + 1}`;
  const initialCluster = ids.map((id, i) => `${id}=${peer(i)}`).join(',');
  const members: Member[] = ids.map((id, i) => ({
    id,
    clientUrl: `http://${client(i)}`,
    logPath: resolve(dir, `${id}.log`),
    args: [MAIN, 'serve', '--id', id, '--data-dir', resolve(dir, id), '--peer-addr', peer(i), '--client-addr', client(i), '--initial-cluster', initialCluster, ...passThrough],
    child: null,
    restarts: [],
  }));

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

  io.stdout(`raftkv: starting a ${n}-node cluster, data in ${dir}\n`);
  for (const m of members) {
    startMember(m);
    io.stdout(`  ${m.id}  client ${m.clientUrl}  logs ${m.logPath}\n`);
  }
  io.stdout(`try:  node ${MAIN} put hello world --endpoints ${members.map((m) => m.clientUrl).join(',')}\n`);
  io.stdout('Ctrl-C stops every node cleanly.\n');

  // Watch the cluster and narrate leadership, which is what a person wants to see happen.
  let lastLeader = '';
  const watch = setInterval(() => {
    void (async () => {
      for (const m of members) {
        try {
          const res = await fetch(`${m.clientUrl}/v1/status`, { signal: AbortSignal.timeout(500) });
          if (!res.ok) continue;
          const s = (await res.json()) as { leader?: string | null; term?: number };
          const key = `${s.leader ?? ''}@${s.term ?? 0}`;
          if (s.leader && key !== lastLeader) {
            lastLeader = key;
            io.stdout(`leader: ${s.leader} (term ${s.term})\n`);
          }
          return;
        } catch {
          // that node is not up (yet); ask the next
        }
      }
    })();
  }, 1000);

  return await new Promise<number>((resolveExit) => {
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      clearInterval(watch);
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
