// One process per data dir. Two servers on one data dir would both append to one WAL and both
// act on one vote: Figure 2's "persistent state" would no longer belong to one server. Node has
// no flock(2), so the lock is built from two things the kernel does give us.
//
// 1. THE LOCK FILE `<dir>/raftkv.lock` (0600) says who holds the lock, for the operator and for
//    the next starter: one line of JSON {pid, hostname, boot id (/proc/sys/kernel/random/boot_id),
//    pid and network namespaces (readlink /proc/self/ns/{pid,net}), the process's start time
//    (field 22 of /proc/self/stat), the guard socket's name, nodeId, startedAt, a random token}.
//    It is written whole to a temporary file first and then linked to its name (link(2) fails if
//    the name exists, like O_EXCL), so nobody ever reads a half-written lock: a name that exists
//    is a lock with its holder in it. (Where hard links are not supported, it is copied with
//    COPYFILE_EXCL instead, and a half-written file reads as "cannot be read": refused.)
//
// 2. THE GUARD, a Linux abstract unix socket `@raftkv-data-dir-lock/<st_dev>:<st_ino of dir>`,
//    bound by the holder for as long as it holds the lock. Binding a name that is bound fails
//    (EADDRINUSE), and the kernel unbinds it when the process dies, kill -9 included: it is a
//    mutex the kernel cleans up, with the scope of one network namespace. Every starter binds
//    it BEFORE it looks at the lock file and keeps it if it wins.
//
// A STALE LOCK (its holder died without releasing) is taken over only when that is provable:
// same hostname and boot id (not another machine, not an earlier boot), same network namespace,
// and the guard socket the holder recorded is the one we could just bind — so no process in
// that namespace holds it, and the holder, which held it for its whole life, is gone. If the
// holder shares our pid namespace, its pid MUST also be dead (or a zombie, or reused by a
// process with another start time): a live pid is believed over the socket. The takeover is a
// rename(2) of our complete file over the stale one, never unlink-then-create: the name never
// disappears, so no starter anywhere finds it missing and creates its own meanwhile.
//
// WHY TWO STARTERS CANNOT BOTH TAKE OVER. Unlinking a stale lock and creating a new one cannot
// be made safe with files alone: A and B both read the stale lock, A replaces it with its own,
// then B replaces A's, believing it the stale one; re-reading afterwards does not help when A
// re-reads before B writes. Here only a starter that holds the guard may replace a stale lock,
// and only if the holder's recorded guard is that same socket: so every starter able to take
// the lock over is in one network namespace and binds one name, and at most one at a time
// holds it. B cannot bind while A holds it; once A has released it, the file names A (alive, or
// cleanly released). After writing, the starter re-reads the file to check its token is there.
//
// WHAT IS REFUSED, with DataDirLockedError naming the holder (pid, host, node id, since when)
// and the file: a live holder; a holder on another host, another boot, another network or pid
// namespace whose guard we cannot check; a file that cannot be read. The message says what to
// check and which file to remove. Off Linux there is no guard: every existing lock is refused.
//
// ORDER. The server MUST take the lock BEFORE it opens FileStorage or writes anything in the
// data dir, and release it only AFTER everything is closed; FileStorage does not take it.
import { randomBytes } from 'node:crypto';
import { constants, readFileSync, readlinkSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, readlink, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { StorageError } from './errors.js';
import { PRIVATE_DIR_MODE, openPrivateFile, syncDirectory, writeFully } from './fs-util.js';

/** The lock file's name inside the data dir. */
export const DATA_DIR_LOCK_FILE = 'raftkv.lock';
const FORMAT = 'raftkv-data-dir-lock';
/** How long a starter waits for another one that holds the guard to finish taking the lock. */
const GUARD_WAIT_MS = 2000;
const GUARD_POLL_MS = 25;

/** Who holds a data dir: what the lock file says. */
export interface DataDirLockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** /proc/sys/kernel/random/boot_id; null off Linux. */
  readonly bootId: string | null;
  /** readlink /proc/self/ns/pid, e.g. `pid:[4026531836]`; null off Linux. */
  readonly pidNamespace: string | null;
  /** readlink /proc/self/ns/net; null off Linux. */
  readonly netNamespace: string | null;
  /** Start time of the process in clock ticks after boot (/proc/self/stat): tells a reused pid. */
  readonly processStart: string | null;
  /** Name of the abstract guard socket it holds (without the leading NUL); null off Linux. */
  readonly guard: string | null;
  readonly nodeId: string;
  /** When the lock was taken, ISO 8601. */
  readonly startedAt: string;
  /** Random; tells this holder's file from any other. */
  readonly token: string;
}

export interface DataDirLock {
  readonly dir: string;
  /** The lock file. */
  readonly file: string;
  readonly holder: DataDirLockHolder;
  /** Removes the lock file (if it is still ours) and frees the guard. Idempotent. */
  release(): Promise<void>;
}

/** The data dir is locked by another process (or another lock in this one), or may be. */
export class DataDirLockedError extends StorageError {
  readonly file: string;
  /** What the lock file says, or null if it could not be read. */
  readonly holder: DataDirLockHolder | null;
  constructor(file: string, holder: DataDirLockHolder | null, reason: string) {
    super('DATA_DIR_LOCKED', `data dir locked: ${reason} (lock file ${file})`);
    this.file = file;
    this.holder = holder;
  }
}

/**
 * Takes the lock on `dir` (created 0700 if missing) for this process, or throws
 * DataDirLockedError naming the holder. A lock left by a process that provably died is taken
 * over at once (see the header).
 */
export async function acquireDataDirLock(dir: string, owner: { readonly nodeId: string }): Promise<DataDirLock> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const file = join(dir, DATA_DIR_LOCK_FILE);
  const guardName = process.platform === 'linux' ? await guardNameOf(dir) : null;
  const guard = guardName === null ? null : await bindGuard(guardName, file);
  try {
    const me = await describeSelf(owner.nodeId, guardName);
    await placeLockFile(dir, file, me, guard !== null);
    return new HeldLock(dir, file, me, guard);
  } catch (error) {
    await closeGuard(guard);
    throw error;
  }
}

class HeldLock implements DataDirLock {
  readonly dir: string;
  readonly file: string;
  readonly holder: DataDirLockHolder;
  private guard: Server | null;
  private released: Promise<void> | null = null;

  constructor(dir: string, file: string, holder: DataDirLockHolder, guard: Server | null) {
    this.dir = dir;
    this.file = file;
    this.holder = holder;
    this.guard = guard;
  }

  release(): Promise<void> {
    this.released ??= this.releaseOnce();
    return this.released;
  }

  private async releaseOnce(): Promise<void> {
    try {
      // The file goes BEFORE the guard: a starter that binds the guard afterwards finds no lock.
      const current = await readLockFile(this.file);
      if (current !== 'missing' && current.holder?.token === this.holder.token) {
        await unlink(this.file);
        await syncDirectory(this.dir);
      }
    } finally {
      await closeGuard(this.guard);
      this.guard = null;
    }
  }
}

// ---- the lock file ---------------------------------------------------------------------------

async function placeLockFile(dir: string, file: string, me: DataDirLockHolder, holdsGuard: boolean): Promise<void> {
  const temporary = join(dir, `.${DATA_DIR_LOCK_FILE}.${process.pid}.${me.token.slice(0, 8)}.tmp`);
  const handle = await openPrivateFile(temporary, true);
  try {
    await writeFully(handle, Buffer.from(`${JSON.stringify({ format: FORMAT, version: 1, ...me })}\n`, 'utf8'), 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // A lock that vanishes between our attempt and our read was just released: try again, a
    // few times; a lock that keeps changing is someone else's business.
    for (let attempt = 0; ; attempt++) {
      if (await createExclusive(temporary, file)) break;
      const existing = await readLockFile(file);
      if (existing === 'missing') {
        if (attempt < 5) continue;
        throw new DataDirLockedError(file, null, 'the lock file keeps appearing and disappearing: another process is starting and stopping on this data dir');
      }
      const verdict = judge(existing.holder, me, holdsGuard, file);
      if (verdict !== null) throw new DataDirLockedError(file, existing.holder, verdict);
      // Provably stale, and we hold the guard that every other starter able to prove it needs:
      // replace it in one step (see the header).
      await rename(temporary, file);
      break;
    }
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  await syncDirectory(dir);
  const placed = await readLockFile(file);
  if (placed === 'missing' || placed.holder?.token !== me.token) {
    throw new DataDirLockedError(file, placed === 'missing' ? null : placed.holder, 'the lock file was replaced by another process while this one was taking it');
  }
}

/** Gives `file` the content of `temporary` unless `file` exists; false if it does. */
async function createExclusive(temporary: string, file: string): Promise<boolean> {
  try {
    await link(temporary, file);
    return true;
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
  }
  // No hard links on this file system: copy, failing if the name exists.
  try {
    await copyFile(temporary, file, constants.COPYFILE_EXCL);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

/** The holder the file names (null: it exists but is not a lock this code wrote), or 'missing'. */
async function readLockFile(file: string): Promise<{ readonly holder: DataDirLockHolder | null } | 'missing'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  return { holder: parseHolder(text) };
}

/** Validates every field: the file is input like any other (ARCHITECTURE.md). */
function parseHolder(text: string): DataDirLockHolder | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const isText = (x: unknown): x is string => typeof x === 'string' && x.length <= 256;
  const isOptionalText = (x: unknown): x is string | null => x === null || isText(x);
  if (v['format'] !== FORMAT || v['version'] !== 1) return null;
  const { pid, hostname: host, bootId, pidNamespace, netNamespace, processStart, guard, nodeId, startedAt, token } = v;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return null;
  if (!isText(host) || !isText(nodeId) || !isText(startedAt) || !isText(token)) return null;
  if (!isOptionalText(bootId) || !isOptionalText(pidNamespace) || !isOptionalText(netNamespace) || !isOptionalText(processStart) || !isOptionalText(guard)) return null;
  return { pid, hostname: host, bootId, pidNamespace, netNamespace, processStart, guard, nodeId, startedAt, token };
}

/**
 * Null if the lock `holder` left is provably stale and may be replaced by `me`; otherwise why
 * not, for the operator: who holds it, what to check, which file to remove.
 */
function judge(holder: DataDirLockHolder | null, me: DataDirLockHolder, holdsGuard: boolean, file: string): string | null {
  if (holder === null) {
    return `the lock file cannot be read as a raftkv lock (damaged, or being written); if no raftkv process uses this data dir, remove ${file} and start again`;
  }
  const who = describeHolder(holder);
  if (holder.hostname !== me.hostname) {
    return `${who} holds it on another host; this host cannot tell whether it still runs. If no raftkv process on ${holder.hostname} uses this data dir (check pid ${holder.pid} there), remove ${file} and start again`;
  }
  if (holder.bootId !== me.bootId) {
    return `${who} took it under another boot of this host (boot id ${holder.bootId ?? 'unknown'}, now ${me.bootId ?? 'unknown'}). If this machine has rebooted since, that process is gone: remove ${file} and start again (another machine of the same name sharing this data dir would look the same, so raftkv does not decide this alone)`;
  }
  const isSamePidNamespace = holder.pidNamespace !== null && holder.pidNamespace === me.pidNamespace;
  if (isSamePidNamespace && isRunning(holder.pid, holder.processStart)) {
    return `${who} holds it and is running: stop it first, or give this server another data dir`;
  }
  const isGuardProof = holdsGuard && holder.netNamespace !== null && holder.netNamespace === me.netNamespace && holder.guard === me.guard;
  if (isGuardProof) return null;
  const where = isSamePidNamespace ? 'another network namespace, or with a different view of this directory' : 'another pid namespace (another container?)';
  return `${who} took it in ${where}, where this process cannot check whether it still runs. If no raftkv process uses this data dir any more, remove ${file} and start again`;
}

function describeHolder(holder: DataDirLockHolder): string {
  return `raftkv node ${holder.nodeId} (pid ${holder.pid} on host ${holder.hostname}, since ${holder.startedAt})`;
}

/**
 * Is `pid` a live process, and the one that took the lock? Dead (ESRCH), a zombie, or a reused
 * pid (another start time) say no; a process of another user (EPERM) says yes.
 */
function isRunning(pid: number, processStart: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errorCode(error) === 'ESRCH') return false;
  }
  const stat = readProcStat(pid);
  if (stat === null) return true;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return processStart === null || stat.startTime === processStart;
}

// ---- who we are --------------------------------------------------------------------------------

async function describeSelf(nodeId: string, guard: string | null): Promise<DataDirLockHolder> {
  const orNull = async (read: () => Promise<string>): Promise<string | null> => {
    try {
      return (await read()).trim();
    } catch {
      return null;
    }
  };
  return {
    pid: process.pid,
    hostname: hostname(),
    bootId: await orNull(() => readFile('/proc/sys/kernel/random/boot_id', 'utf8')),
    pidNamespace: await orNull(() => readlink('/proc/self/ns/pid')),
    netNamespace: await orNull(() => readlink('/proc/self/ns/net')),
    processStart: readProcStat(process.pid)?.startTime ?? null,
    guard,
    nodeId,
    startedAt: new Date().toISOString(),
    token: randomBytes(16).toString('hex'),
  };
}

/**
 * The fields of /proc/PID/stat from field 3 (the state) on, at index 0 (null when unreadable, e.g.
 * off Linux). Synchronous on purpose: a tiny procfs read.
 */
export function procStatFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** State and start time of `pid` from /proc (null when unreadable). */
function readProcStat(pid: number): { readonly state: string; readonly startTime: string } | null {
  const fields = procStatFields(pid);
  if (fields === null) return null;
  const state = fields[0];
  const startTime = fields[19];
  return state === undefined || startTime === undefined ? null : { state, startTime };
}

// ---- the guard ---------------------------------------------------------------------------------

/** The guard's name: the directory's device and inode, the same through any path or bind mount. */
async function guardNameOf(dir: string): Promise<string> {
  const s = await stat(dir, { bigint: true });
  return `raftkv-data-dir-lock/${s.dev}:${s.ino}`;
}

/**
 * Binds the guard. While another process holds it, that process either holds the lock (and the
 * file names it, running: refused at once) or is taking it (waited for, briefly).
 */
async function bindGuard(name: string, file: string): Promise<Server> {
  const deadline = Date.now() + GUARD_WAIT_MS;
  for (;;) {
    const server = await listenAbstract(name);
    if (server !== null) return server;
    const existing = await readLockFile(file);
    const holder = existing === 'missing' ? null : existing.holder;
    const isHeld = holder !== null && holder.guard === name && isRunningHere(holder);
    if (isHeld || Date.now() >= deadline) {
      const who = holder === null ? 'another process' : describeHolder(holder);
      const reason = isHeld
        ? `${who} holds it and is running: stop it first, or give this server another data dir`
        : `${who} holds its guard socket @${name} in this network namespace (find it with: ss -xlp | grep raftkv-data-dir-lock)`;
      throw new DataDirLockedError(file, holder, reason);
    }
    await new Promise((resolve) => setTimeout(resolve, GUARD_POLL_MS));
  }
}

/** Does `holder` name a live process that this one can see (same host, boot and pid namespace)? */
function isRunningHere(holder: DataDirLockHolder): boolean {
  if (holder.hostname !== hostname() || holder.pidNamespace === null) return false;
  if (holder.bootId !== readSyncOrNull(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim())) return false;
  if (holder.pidNamespace !== readSyncOrNull(() => readlinkSync('/proc/self/ns/pid'))) return false;
  return isRunning(holder.pid, holder.processStart);
}

/** Listens on the abstract socket `name`; null if it is bound already. */
function listenAbstract(name: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (error) => {
      if (errorCode(error) === 'EADDRINUSE') resolve(null);
      else reject(error);
    });
    server.listen({ path: `\0${name}` }, () => {
      // It guards, it does not serve; it must not keep a process alive on its own.
      server.unref();
      resolve(server);
    });
  });
}

function closeGuard(guard: Server | null): Promise<void> {
  return guard === null ? Promise.resolve() : new Promise((resolve) => guard.close(() => resolve()));
}

// ---- small helpers -----------------------------------------------------------------------------

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function readSyncOrNull(read: () => string): string | null {
  try {
    return read();
  } catch {
    return null;
  }
}
