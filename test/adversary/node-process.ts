// What the adversary suite reads about a node's process from outside, as an operator would: its
// pid (found in /proc by the node's own --data-dir, which no other process names), its resident
// memory, and signals (SIGHUP reloads --auth-file). The harness keeps its child private; the
// process table is the operator's view anyway.
import { readdirSync, readFileSync } from 'node:fs';
import type { TestNode } from '../cluster/harness.js';

/** The pid of the `raftkv serve` process running `node` (its data dir is on its command line). */
export function pidOf(node: TestNode): number {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    const at = argv.indexOf('--data-dir');
    if (argv.includes('serve') && at >= 0 && argv[at + 1] === node.dataDir) pids.push(Number(name));
  }
  if (pids.length !== 1) throw new Error(`expected one process serving ${node.dataDir}, found ${pids.length} (${pids.join(', ')})`);
  return pids[0]!;
}

/** Resident memory of `pid` in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export function sendSignal(node: TestNode, signal: NodeJS.Signals): void {
  process.kill(pidOf(node), signal);
}

/**
 * What the nodes' logs say about leadership, for a failed assertion's message: role changes and
 * event loops held (raft-node.ts), in each node's order, `id time msg {fields}`. A lost
 * leadership with no held loop in any log points at the network or a peer's clock; with one, at
 * the node that was held and for how long.
 */
export function leadershipLog(nodes: readonly TestNode[]): string {
  const out: string[] = [];
  for (const node of nodes) {
    let text: string;
    try {
      text = readFileSync(node.logFile, 'utf8');
    } catch {
      out.push(`${node.id}: no log`);
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('"role changed"') && !line.includes('"event loop held"')) continue;
      try {
        const fields = JSON.parse(line) as Record<string, unknown>;
        const head = `${node.id} ${String(fields['time'])} ${String(fields['msg'])}`;
        for (const key of ['time', 'msg', 'level', 'node']) delete fields[key];
        out.push(`${head} ${JSON.stringify(fields)}`);
      } catch {
        out.push(`${node.id} ${line}`);
      }
    }
  }
  return out.join('\n');
}
