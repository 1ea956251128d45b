// `raftkv snapshot restore`: one member's data dir of a NEW cluster whose first state is a backup.
//
// Every member of the new cluster is restored from the same file with the same --initial-cluster
// (and --initial-cluster-token), so they all hold the same first state: the backup's snapshot at
// its own index and term, with the new membership as its configuration (thesis §4.1: membership
// is part of the log's state), and a hard state that has it committed. The old cluster's id and
// member addresses are dropped from the snapshot's registry: the new members present the founding
// id of their --initial-cluster until their first leader draws and commits a new random cluster
// id (server/identity.ts), and each registers its own addresses when it starts. Keys, values,
// revisions, history, leases and the idempotency table are the backup's, byte for byte.
//
// The file is checked whole (envelope, SHA-256, the snapshot's CRC32, and a full decode of the
// state) BEFORE the data dir is touched; the data dir must be empty or absent, and a restore that
// fails part way leaves it as it found it.
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeId } from '../raft/index.js';
import { KvStateMachine } from '../kv/index.js';
import { acquireDataDirLock, DATA_DIR_LOCK_FILE, FileStorage } from '../storage/index.js';
import { BackupFileError, verifyBackup, type VerifiedBackup } from '../server/backup-format.js';
import { hostPortText, type HostPort } from '../server/address.js';
import { foundingId, tokenHash } from '../server/identity.js';
import { writeClusterFile } from '../server/data-dir.js';
import { replaceSnapshotRegistry, ServiceStateMachine } from '../server/member-registry.js';
import { DEFAULT_NODE_CONFIG } from '../server/node-config.js';

export interface RestoreOptions {
  readonly file: string;
  readonly dataDir: string;
  readonly id: NodeId;
  readonly initialCluster: ReadonlyMap<NodeId, HostPort>;
  readonly initialClusterToken: string | null;
}

export interface RestoreResult {
  readonly dataDir: string;
  readonly id: NodeId;
  readonly index: number;
  readonly term: number;
  readonly keys: number;
  readonly revision: number;
  readonly leases: number;
  readonly sourceClusterId: string | null;
  readonly sha256: string;
}

/** A restore refused or failed; one line. */
export class RestoreError extends Error {}

/** A backup checked whole (envelope, SHA-256, the snapshot's CRC32) and its state decoded. */
export interface CheckedBackup {
  readonly backup: VerifiedBackup;
  readonly kv: KvStateMachine;
  readonly bytes: number;
}

/** Reads and checks `file` through and through; throws RestoreError or BackupFileError (one line). */
export async function checkBackupFile(file: string): Promise<CheckedBackup> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new RestoreError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const backup = verifyBackup(file, bytes);
  // The whole state decodes, or nothing is written (a CRC can be right over bytes we cannot read).
  const kv = new KvStateMachine();
  const dataOffset = bytes.length - BACKUP_TAIL_BYTES - backup.snapshot.data.length;
  try {
    new ServiceStateMachine(kv).restore(backup.snapshot.data);
  } catch (err) {
    throw new BackupFileError(file, dataOffset, `the state inside does not decode: ${(err as Error).message}`);
  }
  return { backup, kv, bytes: bytes.length };
}

export async function restoreDataDir(o: RestoreOptions): Promise<RestoreResult> {
  const { backup, kv } = await checkBackupFile(o.file);
  const snap = backup.snapshot;
  const data = replaceSnapshotRegistry(snap.data, [], null);

  const dirExisted = existsSync(o.dataDir);
  if (dirExisted) {
    const names = (await readdir(o.dataDir)).filter((n) => n !== DATA_DIR_LOCK_FILE);
    if (names.length > 0) throw new RestoreError(`--data-dir ${o.dataDir} is not empty (it holds ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}): restore writes only a new data dir`);
  }
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const lock = await acquireDataDirLock(o.dataDir, { nodeId: o.id });
  try {
    const token = o.initialClusterToken ?? DEFAULT_NODE_CONFIG.initialClusterToken;
    await writeClusterFile(o.dataDir, {
      version: 2,
      nodeId: o.id,
      clusterId: null,
      founding: foundingId(o.initialCluster, token),
      founders: [...o.initialCluster.keys()],
      peers: Object.fromEntries([...o.initialCluster].map(([id, a]) => [id, hostPortText(a)])),
      token: tokenHash(token),
    });
    const storage = await FileStorage.open(o.dataDir, { logger: { warn: () => undefined } });
    try {
      const config = { voters: [...o.initialCluster.keys()], votersOutgoing: [], learners: [] };
      await storage.installSnapshot({ meta: { index: snap.meta.index, term: snap.meta.term, config }, data });
      storage.setHardState({ currentTerm: snap.meta.term, votedFor: null, commitIndex: snap.meta.index });
      await storage.sync();
    } finally {
      await storage.close();
    }
  } catch (err) {
    await lock.release().catch(() => undefined);
    // Leave the data dir as it was found: absent, or empty.
    if (dirExisted) for (const name of await readdir(o.dataDir)) await rm(join(o.dataDir, name), { recursive: true, force: true });
    else await rm(o.dataDir, { recursive: true, force: true });
    throw new RestoreError(`restore into ${o.dataDir} failed: ${(err as Error).message}`);
  }
  await lock.release();
  return {
    dataDir: o.dataDir,
    id: o.id,
    index: snap.meta.index,
    term: snap.meta.term,
    keys: kv.size,
    revision: kv.revision,
    leases: kv.leaseCount,
    sourceClusterId: backup.header.clusterId,
    sha256: backup.sha256,
  };
}

/** Bytes after the snapshot's data: its CRC32 and the backup's SHA-256. */
const BACKUP_TAIL_BYTES = 4 + 32;
