// The data dir around the storage layer's own files: created private (0700), its cluster.json
// written atomically and privately (0600), and, when a start fails on a data dir that held
// nothing before it, emptied again, so a failed start leaves the data dir as it found it.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_FILE, encodeClusterFile, type ClusterFile } from './identity.js';

export interface DataDirState {
  /** The directory did not exist before this start. */
  readonly isCreated: boolean;
  /** It held no file before this start (a fresh node: a failed start removes what it made). */
  readonly wasEmpty: boolean;
  /** It holds write-ahead log segments. */
  readonly hasLog: boolean;
}

/** Creates `dir` (0700) if needed and says what it held. */
export function prepareDataDir(dir: string): DataDirState {
  const isCreated = !existsSync(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (isCreated) chmodSync(dir, 0o700);
  const names = readdirSync(dir);
  const walDir = join(dir, 'wal');
  const hasLog = existsSync(walDir) && readdirSync(walDir).some((n) => n.endsWith('.wal'));
  return { isCreated, wasEmpty: names.length === 0, hasLog };
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

/** Writes a small file durably and privately: temporary file 0600, fsync, rename, fsync the directory. */
export function writeFileAtomicSync(path: string, data: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  const dirFd = openSync(join(path, '..'), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

export function writeClusterFile(dir: string, file: ClusterFile): void {
  writeFileAtomicSync(join(dir, CLUSTER_FILE), encodeClusterFile(file));
}
