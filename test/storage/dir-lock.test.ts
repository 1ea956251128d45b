// One process per data dir (issue 9, "Operational safety"): a second acquire, in this process or
// in another, is refused with a message naming the holder and the lock file; a holder killed
// with SIGKILL leaves a lock the next starter takes over at once; processes racing for a stale
// lock produce exactly one winner, round after round; a lock that cannot be proved stale (another
// host, another boot, another network namespace, an unreadable file) is refused and left as it is.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATA_DIR_LOCK_FILE, DataDirLockedError, acquireDataDirLock } from '../../src/storage/index.js';
import type { DataDirLockHolder } from '../../src/storage/index.js';
import { TempDirs } from './helpers.js';

const CHILD = fileURLToPath(new URL('./lock-child.js', import.meta.url));
const RACE_ROUNDS = 40;
const RACERS = 3;
const temp = new TempDirs();
after(() => temp.removeAll());

/** A lock-child.ts process, line by line. Every wait is bounded; close() kills what is left. */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  private readonly lines: string[] = [];
  private wake: (() => void) | null = null;

  constructor(dir: string, nodeId: string) {
    this.process = spawn(process.execPath, [CHILD, dir, nodeId], { stdio: ['pipe', 'pipe', 'pipe'] });
    let pending = '';
    this.process.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (pending + chunk).split('\n');
      pending = parts.pop()!;
      this.lines.push(...parts);
      this.wake?.();
    });
    this.process.stderr.setEncoding('utf8').on('data', (chunk: string) => this.lines.push(`stderr ${chunk}`));
    this.exited = new Promise((resolve) => this.process.on('close', (code) => resolve(code)));
  }

  get pid(): number {
    return this.process.pid!;
  }

  send(line: string): void {
    this.process.stdin.write(`${line}\n`);
  }

  /** The first line (consumed) that starts with one of `prefixes`. */
  async next(prefixes: readonly string[], ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.lines.findIndex((l) => prefixes.some((p) => l.startsWith(p)));
      if (i >= 0) return this.lines.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`child ${this.pid}: no line starting with ${prefixes.join('|')}; got ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  async kill9(): Promise<void> {
    this.process.kill('SIGKILL');
    await this.exited;
  }

  async close(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
    await this.exited;
  }
}

/** A pid that belonged to a process of this pid namespace and is free now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('close', resolve));
  return child.pid!;
}

function readHolder(file: string): DataDirLockHolder {
  return JSON.parse(readFileSync(file, 'utf8')) as DataDirLockHolder;
}

/** The message names the holder: pid, host, node id, since when; and the lock file. */
function assertNamesHolder(message: string, holder: { readonly pid: number; readonly nodeId: string }, file: string): void {
  assert.ok(message.includes(`pid ${holder.pid} on host ${hostname()}`), message);
  assert.ok(message.includes(`node ${holder.nodeId}`), message);
  assert.match(message, /since \d{4}-\d\d-\d\dT/);
  assert.ok(message.includes(`lock file ${file}`), message);
}

function isLockedBy(holder: { readonly pid: number; readonly nodeId: string }, file: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof DataDirLockedError, `expected DataDirLockedError, got ${String(error)}`);
    assert.equal(error.code, 'DATA_DIR_LOCKED');
    assert.equal(error.file, file);
    assert.equal(error.holder?.pid, holder.pid);
    assertNamesHolder(error.message, holder, file);
    return true;
  };
}

test('a second acquire in the same process is refused, naming the holder and the lock file; release frees it', async () => {
  const dir = join(temp.make(), 'data');
  const lock = await acquireDataDirLock(dir, { nodeId: 'n1' });
  const file = join(dir, DATA_DIR_LOCK_FILE);
  assert.equal(lock.file, file);
  assert.equal((statSync(file).mode & 0o777).toString(8), '600');
  assert.equal((statSync(dir).mode & 0o777).toString(8), '700');
  const onDisk = readHolder(file);
  assert.equal(onDisk.pid, process.pid);
  assert.equal(onDisk.nodeId, 'n1');
  assert.equal(onDisk.token, lock.holder.token);

  await assert.rejects(acquireDataDirLock(dir, { nodeId: 'n2' }), isLockedBy({ pid: process.pid, nodeId: 'n1' }, file));
  assert.equal(readHolder(file).token, lock.holder.token, 'the refused starter left the lock alone');

  await lock.release();
  await lock.release();
  assert.equal(existsSync(file), false);
  const again = await acquireDataDirLock(dir, { nodeId: 'n2' });
  assert.equal(readHolder(file).nodeId, 'n2');
  await again.release();
});

test('a second acquire from a child process is refused, naming the holder', { timeout: 30_000 }, async () => {
  const dir = join(temp.make(), 'data');
  const lock = await acquireDataDirLock(dir, { nodeId: 'parent-node' });
  const child = new Child(dir, 'child-node');
  try {
    await child.next(['ready']);
    child.send('go');
    const line = await child.next(['refused', 'locked']);
    assert.ok(line.startsWith('refused'), line);
    assertNamesHolder(line, { pid: process.pid, nodeId: 'parent-node' }, lock.file);
  } finally {
    await child.close();
    await lock.release();
  }
});

test('a holder killed with SIGKILL leaves a lock the next starter takes over at once', { timeout: 30_000 }, async () => {
  const dir = join(temp.make(), 'data');
  const child = new Child(dir, 'doomed');
  try {
    await child.next(['ready']);
    child.send('go');
    assert.match(await child.next(['locked', 'refused']), /^locked /);
    await assert.rejects(acquireDataDirLock(dir, { nodeId: 'n1' }), isLockedBy({ pid: child.pid, nodeId: 'doomed' }, join(dir, DATA_DIR_LOCK_FILE)));
    await child.kill9();
  } finally {
    await child.close();
  }
  assert.equal(readHolder(join(dir, DATA_DIR_LOCK_FILE)).nodeId, 'doomed', 'SIGKILL left its lock file behind');
  const started = Date.now();
  const lock = await acquireDataDirLock(dir, { nodeId: 'n1' });
  assert.ok(Date.now() - started < 1000, `taken over in ${Date.now() - started} ms`);
  assert.equal(readHolder(lock.file).token, lock.holder.token);
  await lock.release();
});

test(`processes racing for a stale lock: exactly one wins, ${RACE_ROUNDS} rounds of ${RACERS}`, { timeout: 180_000 }, async () => {
  const dir = join(temp.make(), 'data');
  const file = join(dir, DATA_DIR_LOCK_FILE);
  let spawned = 0;
  const racers: Child[] = [];
  try {
    // The first stale lock: a holder killed with SIGKILL.
    const first = new Child(dir, 'first');
    racers.push(first);
    await first.next(['ready']);
    first.send('go');
    await first.next(['locked']);
    await first.kill9();
    racers.length = 0;
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const fresh: Child[] = [];
      while (racers.length + fresh.length < RACERS) fresh.push(new Child(dir, `r${spawned++}`));
      racers.push(...fresh);
      await Promise.all(fresh.map((r) => r.next(['ready'], 20_000)));
      // The same instant for all, as far as one event loop turn can make it.
      for (const r of racers) r.send('go');
      const results = await Promise.all(racers.map((r) => r.next(['locked', 'refused'])));
      const winners = racers.filter((_, i) => results[i]!.startsWith('locked'));
      assert.equal(winners.length, 1, `round ${round}: ${results.join(' / ')}`);
      const winner = winners[0]!;
      assert.equal(readHolder(file).pid, winner.pid, `round ${round}: the file names the winner`);
      for (const [i, r] of racers.entries()) {
        if (r === winner) continue;
        assert.ok(results[i]!.includes(`pid ${winner.pid}`) || results[i]!.includes('guard socket'), `round ${round}: a loser names the winner: ${results[i]}`);
      }
      // The winner dies without releasing: the next round races for its stale lock. The losers
      // race again (a refused child waits for the next `go`), with one new process.
      await winner.kill9();
      racers.splice(racers.indexOf(winner), 1);
    }
  } finally {
    await Promise.all(racers.map((r) => r.close()));
  }
  const lock = await acquireDataDirLock(dir, { nodeId: 'last' });
  await lock.release();
});

/** Writes a lock file like the one `model` describes, with `changes`: what another process would have left. */
async function forge(changes: Partial<DataDirLockHolder>): Promise<{ dir: string; file: string; text: string }> {
  const dir = join(temp.make(), 'data');
  const model = await acquireDataDirLock(dir, { nodeId: 'model' });
  await model.release();
  const file = join(dir, DATA_DIR_LOCK_FILE);
  const text = `${JSON.stringify({ format: 'raftkv-data-dir-lock', version: 1, ...model.holder, nodeId: 'gone', token: 'f'.repeat(32), ...changes })}\n`;
  writeFileSync(file, text, { mode: 0o600 });
  return { dir, file, text };
}

test('a stale lock is taken over when provable: same host, boot and network namespace, its guard free, its pid dead', async () => {
  const pid = await deadPid();
  for (const changes of [{ pid }, { pid, pidNamespace: 'pid:[1]' }, { pid: 1, pidNamespace: 'pid:[1]' }]) {
    const { dir, file } = await forge(changes);
    const lock = await acquireDataDirLock(dir, { nodeId: 'n1' });
    assert.equal(readHolder(file).token, lock.holder.token, JSON.stringify(changes));
    await lock.release();
  }
});

test('a lock that cannot be proved stale is refused, says which file to remove, and is left as it is', async () => {
  const pid = await deadPid();
  const cases: { readonly changes: Partial<DataDirLockHolder>; readonly says: RegExp }[] = [
    { changes: { pid, hostname: 'elsewhere' }, says: /on another host.*check pid \d+ there\), remove .*raftkv\.lock/ },
    { changes: { pid, bootId: '00000000-0000-0000-0000-000000000000' }, says: /another boot of this host.*rebooted since.*remove .*raftkv\.lock/ },
    { changes: { pid, netNamespace: 'net:[1]' }, says: /another network namespace.*remove .*raftkv\.lock/ },
    { changes: { pid, pidNamespace: 'pid:[1]', netNamespace: 'net:[1]' }, says: /another pid namespace.*remove .*raftkv\.lock/ },
    { changes: { pid, guard: 'raftkv-data-dir-lock/1:2' }, says: /different view of this directory.*remove .*raftkv\.lock/ },
    // This very process holds no lock here, but it is alive: a live pid is believed.
    { changes: { pid: process.pid }, says: /is running: stop it first/ },
  ];
  for (const { changes, says } of cases) {
    const { dir, file, text } = await forge(changes);
    await assert.rejects(acquireDataDirLock(dir, { nodeId: 'n1' }), (error: unknown) => {
      assert.ok(error instanceof DataDirLockedError, String(error));
      assert.match(error.message, says);
      assert.match(error.message, /raftkv node gone \(pid \d+ on host \S+, since /);
      assert.equal(error.holder?.nodeId, 'gone');
      return true;
    });
    assert.equal(readFileSync(file, 'utf8'), text, 'left exactly as it was');
  }
  const { dir, file } = await forge({});
  writeFileSync(file, '{"format":"raftkv-data-dir-lock"');
  await assert.rejects(acquireDataDirLock(dir, { nodeId: 'n1' }), /cannot be read as a raftkv lock.*remove .*raftkv\.lock/);
});
