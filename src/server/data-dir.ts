// The data dir around the storage layer's own files: what it held before a start, its
// cluster.json written atomically and privately (0600, storage's writeFileAtomic), and, when a
// start fails on a data dir that held nothing before it, emptied again, so a failed start
// leaves the data dir as it found it.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR_LOCK_FILE, writeFileAtomic } from '../storage/index.js';
import { CLUSTER_FILE, encodeClusterFile, type ClusterFile } from './identity.js';

export interface DataDirState {
  /** The directory did not exist before this start. */
  readonly isCreated: boolean;
  /** It held no file before this start (a fresh node: a failed start removes what it made). */
  readonly wasEmpty: boolean;
  /** It holds write-ahead log segments. */
  readonly hasLog: boolean;
}

/** What `dir` held before this start (read before the lock, which creates it, is taken). */
export function inspectDataDir(dir: string): DataDirState {
  if (!existsSync(dir)) return { isCreated: true, wasEmpty: true, hasLog: false };
  // A lock file left by a holder that is gone is not content: the start takes the lock over.
  const names = readdirSync(dir).filter((n) => n !== DATA_DIR_LOCK_FILE);
  const walDir = join(dir, 'wal');
  const hasLog = existsSync(walDir) && readdirSync(walDir).some((n) => n.endsWith('.wal'));
  return { isCreated: false, wasEmpty: names.length === 0, hasLog };
}

/** Undoes a failed first start: removes what it wrote (the dir itself if this start made it). */
export function restoreEmptyDataDir(dir: string, state: DataDirState): void {
  if (!state.wasEmpty) return;
  if (state.isCreated) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
}

export function writeClusterFile(dir: string, file: ClusterFile): Promise<void> {
  return writeFileAtomic(join(dir, CLUSTER_FILE), encodeClusterFile(file));
}
