// Ports on 127.0.0.1 for processes that will listen on them later: local clusters in tests,
// benchmarks and the fault harness.
//
// Asking the kernel for port 0 and handing the number on is not enough. Such a port comes from the
// ephemeral range, which is also where every outgoing connection takes its local port, so between
// "free" and the child's listen() (or a node's re-listen after a restart) any client socket on the
// machine can take it: CI saw EADDRINUSE that way. So ports are chosen below the ephemeral range,
// where no connect() ever lands, and each is claimed with an exclusive file in a shared directory,
// so test files running side by side never choose the same one. A claim lasts while the process
// that made it lives.
import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLAIM_DIR = join(tmpdir(), 'raftkv-ports');
/** Never below this: well clear of the ports people give their own services (our dev cluster uses 7000+). */
const LOWEST = 10_000;
/** A claim older than this is stale even if its pid is alive (the pid may have been reused). */
const CLAIM_MAX_AGE_MS = 6 * 60 * 60 * 1000;

const ourClaims = new Set<string>();
let exitHookInstalled = false;

/** `count` distinct ports on 127.0.0.1, each free when checked, outside the ephemeral range and claimed for this process. */
export async function freePorts(count: number): Promise<number[]> {
  const [low, high] = prepare();
  const ports: number[] = [];
  const span = high - low + 1;
  let next = low + Math.floor(Math.random() * span);
  for (let tried = 0; ports.length < count; tried++) {
    if (tried >= span) throw new Error(`freePorts: no free port in ${low}-${high} (claims in ${CLAIM_DIR})`);
    const port = next;
    next = next === high ? low : next + 1;
    if (await take(port)) ports.push(port);
  }
  return ports;
}

/**
 * A base port such that base + each of `offsets` is free and now claimed: for `raftkv cluster
 * --base-port`, which lays its nodes out at fixed offsets from it.
 */
export async function freeBasePort(offsets: readonly number[]): Promise<number> {
  const [low, high] = prepare();
  const top = high - Math.max(...offsets);
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * (top - low + 1));
    const taken: number[] = [];
    for (const offset of offsets) {
      if (!(await take(base + offset))) break;
      taken.push(base + offset);
    }
    if (taken.length === offsets.length) return base;
    for (const port of taken) release(port);
  }
  throw new Error(`freeBasePort: no base in ${low}-${top} with offsets ${offsets.join(',')} free`);
}

/** One port; see freePorts. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/** Ready to claim (the claim directory exists, our claims go at exit); the range to claim from. */
function prepare(): [number, number] {
  mkdirSync(CLAIM_DIR, { recursive: true });
  installExitHook();
  return candidateRange();
}

/** The ports not in the kernel's ephemeral range: below it if there is room there, else above it. */
function candidateRange(): [number, number] {
  let ephemeralLow = 32_768;
  let ephemeralHigh = 60_999;
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) [ephemeralLow, ephemeralHigh] = [lo!, hi!];
  } catch {
    // Not Linux: keep Linux's default range, which is also a fine guess elsewhere.
  }
  if (ephemeralLow - LOWEST >= 1000) return [LOWEST, ephemeralLow - 1];
  if (65_535 - ephemeralHigh >= 1000) return [ephemeralHigh + 1, 65_535];
  throw new Error(`freePorts: the ephemeral port range ${ephemeralLow}-${ephemeralHigh} leaves no room for listening ports`);
}

/** Claims `port` and checks it can be listened on; a port that cannot is released again. */
async function take(port: number): Promise<boolean> {
  if (!claim(port)) return false;
  if (await canListen(port)) return true;
  release(port);
  return false;
}

function claimPath(port: number): string {
  return join(CLAIM_DIR, String(port));
}

/** Takes the claim file for `port`, clearing a stale one first; false when a live process holds it. */
function claim(port: number): boolean {
  const path = claimPath(port);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      ourClaims.add(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!isStale(path)) return false;
      try {
        unlinkSync(path);
      } catch {
        // Another process cleared it first; try once more to take it.
      }
    }
  }
  return false;
}

function isStale(path: string): boolean {
  try {
    if (Date.now() - statSync(path).mtimeMs > CLAIM_MAX_AGE_MS) return true;
    const pid = Number(readFileSync(path, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false; // being written right now
    if (pid === process.pid) return false;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // ESRCH: the claimer is gone. ENOENT: the claim vanished. EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

function release(port: number): void {
  const path = claimPath(port);
  ourClaims.delete(path);
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const path of ourClaims) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}
