// What this machine allows at best, measured before the systems run: how long one small durable
// write takes on the disk the clusters write to (the temp dir's), and one loopback round trip
// between two processes. A write at one client crosses two hops, client → leader and leader →
// follower, and each has a sync on its path (the leader's, the follower's), so the one-client
// ceiling is about one write per 2 × (fsync + round trip).
//
// The sync is timed two ways, `writes` times `bytes` bytes each, synchronously: appending to a
// file that grows (each fdatasync also journals the new size) and overwriting a preallocated,
// already synced region (what raftkv's and etcd's WALs do; etcd preallocates its 64 MB
// segments, raftkv zero-fills its own). The ceiling uses the preallocated one.
//
// A 3-member cluster on one machine shares one disk, and at one client its members write at
// nearly the same moment: the probe also issues three O_DSYNC writes at once, to three
// preallocated files, and times the second to finish (a commit needs two durable copies). On a
// virtual disk that serializes cache flushes it is well above a lone write (this project's VM:
// 0.134 ms against 0.053), and a write at one client waits for it plus two round trips (client →
// leader → follower and back): the second estimate, 1 / (2 × round trip + second of three syncs).
import { spawn } from 'node:child_process';
import { closeSync, constants, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentile } from './stats.js';

export interface Latency {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

export interface CeilingProbe {
  readonly dir: string;
  readonly bytes: number;
  readonly appending: Latency;
  readonly preallocated: Latency;
  /** Three O_DSYNC writes issued at once to three preallocated files: until the second is durable. */
  readonly secondOfThree: Latency;
  readonly loopbackRoundTrip: Latency;
}

export async function probeCeiling(writes = 300, bytes = 256, roundTrips = 2000): Promise<CeilingProbe> {
  const dir = mkdtempSync(join(tmpdir(), 'fsync-probe-'));
  try {
    const record = Buffer.alloc(bytes, 'r');
    const write = (fd: number, i: number): void => void writeSync(fd, record, 0, bytes, i * bytes);
    const appending = timeSyncs(join(dir, 'appending'), writes, write);
    const preallocated = timeSyncs(join(dir, 'preallocated'), writes, write, (fd) => preallocate(fd, writes * bytes));
    const secondOfThree = await timeSimultaneousSyncs(dir, writes, bytes);
    return { dir: tmpdir(), bytes, appending, preallocated, secondOfThree, loopbackRoundTrip: await timeRoundTrips(roundTrips) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function timeSyncs(path: string, writes: number, write: (fd: number, i: number) => void, prepare?: (fd: number) => void): Latency {
  const fd = openSync(path, 'w+');
  try {
    prepare?.(fd);
    const took = new Float64Array(writes);
    for (let i = 0; i < writes; i++) {
      const t0 = performance.now();
      write(fd, i);
      fdatasyncSync(fd);
      took[i] = performance.now() - t0;
    }
    return summarize(took);
  } finally {
    closeSync(fd);
  }
}

/** Zeros over the first `size` bytes of the file, synced: a region later writes overwrite in place. */
function preallocate(fd: number, size: number): void {
  writeSync(fd, Buffer.alloc(size), 0, size, 0);
  fdatasyncSync(fd);
}

/** `writes` rounds of three O_DSYNC writes at once (libuv's thread pool runs them side by side). */
async function timeSimultaneousSyncs(dir: string, writes: number, bytes: number): Promise<Latency> {
  const record = Buffer.alloc(bytes, 'r');
  const files: FileHandle[] = [];
  try {
    for (let f = 0; f < 3; f++) {
      const path = join(dir, `member-${f}`);
      const fd = openSync(path, 'w+');
      preallocate(fd, writes * bytes);
      closeSync(fd);
      files.push(await open(path, constants.O_WRONLY | constants.O_DSYNC));
    }
    const took = new Float64Array(writes);
    for (let i = 0; i < writes; i++) {
      const t0 = performance.now();
      const done: number[] = [];
      await Promise.all(files.map(async (h) => {
        await h.write(record, 0, bytes, i * bytes);
        done.push(performance.now() - t0);
      }));
      took[i] = done[1]!;
    }
    return summarize(took);
  } finally {
    for (const h of files) await h.close();
  }
}

// An echo server in a child process: each round trip wakes two processes, as a real hop does.
const ECHO_SERVER = "require('net').createServer((s) => { s.setNoDelay(true); s.pipe(s); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); })";

async function timeRoundTrips(count: number): Promise<Latency> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', () => reject(new Error('the echo server exited before listening')));
    });
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const took = new Float64Array(count);
    const ping = Buffer.alloc(64, 'p');
    let pending: { resolve: () => void; reject: (err: Error) => void } | null = null;
    let received = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received < ping.length || pending === null) return;
      received -= ping.length;
      const p = pending;
      pending = null;
      p.resolve();
    });
    socket.on('error', (err) => pending?.reject(err));
    try {
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          pending = { resolve, reject };
          socket.write(ping);
        });
        took[i] = performance.now() - t0;
      }
    } finally {
      socket.destroy();
    }
    return summarize(took);
  } finally {
    child.kill('SIGKILL');
  }
}

function summarize(took: Float64Array): Latency {
  took.sort();
  return { samples: took.length, p50Ms: percentile(took, 0.5), p90Ms: percentile(took, 0.9), p99Ms: percentile(took, 0.99) };
}

/** At best one write per 2 × (preallocated fsync p50 + loopback round trip p50), in writes/s. */
export function oneClientCeiling(p: CeilingProbe): number {
  return 1000 / (2 * (p.preallocated.p50Ms + p.loopbackRoundTrip.p50Ms));
}

/** With the members' syncs on one disk: one write per (2 × round trip p50 + second-of-three sync p50). */
export function sharedDiskCeiling(p: CeilingProbe): number {
  return 1000 / (2 * p.loopbackRoundTrip.p50Ms + p.secondOfThree.p50Ms);
}

export function formatCeilingProbe(p: CeilingProbe): string {
  const line = (name: string, l: Latency): string => `${name} p50 ${l.p50Ms.toFixed(3)}, p90 ${l.p90Ms.toFixed(3)}, p99 ${l.p99Ms.toFixed(3)} ms`;
  return [
    `fsync on ${p.dir} (${p.appending.samples} writes of ${p.bytes} B, each + fdatasync): ${line('appending', p.appending)}; ${line('preallocated', p.preallocated)}`,
    `three syncs at once (${p.secondOfThree.samples} rounds, until the second is durable): ${line('', p.secondOfThree).trim()}`,
    `loopback round trip between two processes (${p.loopbackRoundTrip.samples} × 64 B): ${line('', p.loopbackRoundTrip).trim()}`,
    `one-client ceiling ≈ 1 / (2 × (fsync + round trip)) = ${oneClientCeiling(p).toFixed(0)} writes/s; with the three members' syncs on this one disk, 1 / (2 × round trip + second of three syncs) = ${sharedDiskCeiling(p).toFixed(0)} writes/s`,
  ].join('\n');
}
