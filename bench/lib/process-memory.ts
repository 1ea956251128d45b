// What a member costs in memory and disk, read from outside: the resident set of its process from
// /proc/<pid>/status (VmRSS now, VmHWM its peak, RssAnon and RssFile its parts), the process found by its --data-dir argument
// (a fresh temp path, so unique); for a raftkv node the V8 numbers the memory probe writes
// (memory-probe.ts); and the bytes its data dir takes on disk (allocated blocks, as `du`, so a
// preallocated WAL segment counts in full and a sparse file does not).
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcessMemory {
  readonly pid: number;
  readonly rssBytes: number;
  /** Peak resident set since the process started. */
  readonly peakRssBytes: number;
  /** The part of the resident set that is anonymous memory (heaps, malloc), not mapped files. */
  readonly anonRssBytes: number;
  /** The part that is pages of mapped files (etcd's bbolt database is mmap'd; raftkv maps none). */
  readonly fileRssBytes: number;
}

/** process.memoryUsage() of a raftkv node, as memory-probe.ts wrote it. */
export interface HeapSample {
  readonly pid: number;
  /** Date.now() of the sample. */
  readonly time: number;
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  /** Memory of C++ objects bound to JS ones, ArrayBuffer contents included. */
  readonly external: number;
  readonly arrayBuffers: number;
}

/** The pids of processes with `arg` as one whole argument (e.g. their --data-dir). */
export function pidsWithArgument(arg: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(arg)) pids.push(Number(name));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** VmRSS and VmHWM of `pid`; null when it is gone. */
export function processMemory(pid: number): ProcessMemory | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { pid, rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM'), anonRssBytes: kib('RssAnon'), fileRssBytes: kib('RssFile') };
}

/** The one process running with `--data-dir dataDir`, and its memory; null when there is none. */
export function memberMemory(dataDir: string): ProcessMemory | null {
  const pids = pidsWithArgument(dataDir);
  if (pids.length !== 1) return null;
  return processMemory(pids[0]!);
}

/** The probe's latest sample for a node with this data dir; null without one (no probe, or not yet). */
export function readHeapSample(dataDir: string): HeapSample | null {
  try {
    return JSON.parse(readFileSync(`${dataDir}.memory.json`, 'utf8')) as HeapSample;
  } catch {
    return null;
  }
}

/** Bytes allocated on disk under `path` (files and dirs, not following links); 0 if it is gone. */
export function diskBytes(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  let total = st.blocks * 512;
  if (st.isDirectory()) for (const name of readdirSync(path)) total += diskBytes(join(path, name));
  return total;
}
