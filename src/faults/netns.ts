// Network namespaces for a fault run (netns mode). Layout, all inside namespaces this run
// creates, never touching the host's own interfaces or routes:
//
//   <prefix>br      the "switch": bridge br0 with 10.99.0.1/24. The harness itself runs here
//                   (re-executed with `ip netns exec`), so its client traffic reaches every node
//                   from 10.99.0.1 without any route in the host's namespace.
//   <prefix><id>    one per raftkv node: eth0 = 10.99.0.(10+serial)/24, the other end of the
//                   veth pair enslaved to br0 in <prefix>br.
//
// A cut from A to B is `ip route add blackhole B/32` inside A's namespace: A's packets to B are
// discarded, in A's namespace only. Both directions make a symmetric partition. Client traffic
// (from 10.99.0.1) is never cut, so a node on the minority side still answers clients, and
// must refuse what it cannot do safely. `<prefix>` is `rkvf<pid>-` of the supervising process,
// so parallel runs never collide and leftovers of a killed run can be found and removed.
import { readFileSync } from 'node:fs';
import { CommandError, run, runSync } from './shell.js';

export const SUBNET = '10.99.0';
export const HARNESS_ADDRESS = `${SUBNET}.1`;
const NAME_PREFIX = 'rkvf';

export function namespacePrefix(pid: number = process.pid): string {
  return `${NAME_PREFIX}${pid}-`;
}

export function bridgeNamespace(prefix: string): string {
  return `${prefix}br`;
}

/** True when this process may create namespaces: root, and `ip netns` works. */
export function canUseNetns(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  return runSync('ip', ['netns', 'list']) !== null;
}

export function listNamespaces(): string[] {
  const out = runSync('ip', ['netns', 'list']) ?? '';
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

/** Creates `<prefix>br` with its bridge; the caller runs the harness inside it. */
export async function createBridge(prefix: string): Promise<string> {
  const ns = bridgeNamespace(prefix);
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['-n', ns, '-batch', '-'], [
    'link set lo up',
    'link add br0 type bridge',
    'link set br0 up',
    `addr add ${HARNESS_ADDRESS}/24 dev br0`,
    '',
  ].join('\n'));
  return ns;
}

/** Creates a node's namespace and plugs it into the bridge; returns the node's address. */
export async function createNodeNamespace(prefix: string, id: string, serial: number): Promise<{ ns: string; address: string }> {
  if (serial < 1 || serial > 240) throw new RangeError(`node serial ${serial} out of range`);
  const ns = `${prefix}${id}`;
  const br = bridgeNamespace(prefix);
  const address = `${SUBNET}.${10 + serial}`;
  const port = `v${serial}`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await run('ip', ['-n', br, 'link', 'set', port, 'master', 'br0', 'up']);
  await run('ip', ['-n', ns, '-batch', '-'], ['link set lo up', `addr add ${address}/24 dev eth0`, 'link set eth0 up', ''].join('\n'));
  return { ns, address };
}

/** Drops, inside `ns`, every packet to the given addresses. */
export async function addBlackholes(ns: string, addresses: readonly string[]): Promise<void> {
  if (addresses.length === 0) return;
  await run('ip', ['-n', ns, '-batch', '-'], addresses.map((a) => `route replace blackhole ${a}/32`).join('\n') + '\n');
}

/** Removes every blackhole route inside `ns` (a heal). */
export async function clearBlackholes(ns: string): Promise<void> {
  try {
    await run('ip', ['-n', ns, 'route', 'flush', 'type', 'blackhole']);
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    // A namespace removed meanwhile (its node was replaced) has nothing to heal.
    if (listNamespaces().includes(ns)) throw err;
  }
}

export async function deleteNamespace(ns: string): Promise<void> {
  killNamespaceProcesses(ns);
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
}

function killNamespaceProcesses(ns: string): void {
  const pids = (runSync('ip', ['netns', 'pids', ns]) ?? '').split('\n').map(Number).filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/**
 * Synchronous: kills every process inside, then deletes every namespace whose name starts with
 * `prefix` (node namespaces before the bridge). Safe to call more than once.
 */
export function destroyNamespaces(prefix: string): string[] {
  const mine = listNamespaces().filter((n) => n.startsWith(prefix));
  for (const ns of mine) killNamespaceProcesses(ns);
  const ordered = [...mine.filter((n) => n !== bridgeNamespace(prefix)), ...mine.filter((n) => n === bridgeNamespace(prefix))];
  for (const ns of ordered) runSync('ip', ['netns', 'del', ns]);
  return ordered;
}

/** Removes the namespaces of earlier runs whose supervising process is gone (a SIGKILLed run). */
export function sweepStaleNamespaces(): string[] {
  const removed: string[] = [];
  const pids = new Set<number>();
  for (const ns of listNamespaces()) {
    const m = new RegExp(`^${NAME_PREFIX}(\\d+)-`).exec(ns);
    if (m !== null) pids.add(Number(m[1]));
  }
  for (const pid of pids) {
    if (isAlive(pid)) continue;
    removed.push(...destroyNamespaces(namespacePrefix(pid)));
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie or a recycled pid of another program is not our supervisor.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('faults');
  } catch {
    return false;
  }
}
