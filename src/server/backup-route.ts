// GET /v1/snapshot: a consistent backup of the live cluster, streamed (backup-format.ts). Admin
// only (access.ts: a path it does not list needs admin).
//
// CONSISTENT. The node first passes a linearizable read barrier (a read index the leader confirmed
// with a quorum, thesis §6.4, and applied here), then asks its runtime for a snapshot at its
// applied index, which is at or past that read index: the backup holds every write acknowledged
// before the request arrived, and is a state the cluster really had (a committed prefix of the
// log). Any member serves it from its own state; nothing is forwarded.
//
// BOUNDED. The snapshot is the runtime's own local snapshot (sliced, copy-on-write, saved to the
// data dir as usual), and the answer is streamed from that file a chunk at a time, waiting for the
// socket to drain: beyond that snapshot, a backup costs one chunk of memory. At most
// `maxConcurrent` are served at once (503 OVERLOADED beyond). A client that goes away, or takes
// nothing for a minute, ends it.
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { listSnapshotFiles } from '../storage/index.js';
import type { RaftNode } from '../node/index.js';
import { ApiError } from './errors.js';
import { allowParams, expectMethod, type Reply } from './http-util.js';
import type { ParsedRequest } from './api-types.js';
import type { Logger } from './logger.js';
import { BACKUP_TRAILER_BYTES, backupHash, encodeBackupHead } from './backup-format.js';

export const SNAPSHOT_PATH = '/v1/snapshot';
const CHUNK_BYTES = 1 << 20;
/** A client that takes nothing for this long is dropped: it would hold the file and the slot. */
const STALL_MS = 60_000;

export interface BackupRouteOptions {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly node: RaftNode<unknown>;
  /** A linearizable read barrier (KvService.readBarrier('linearizable', deadline)). */
  readonly readBarrier: (deadline: number) => Promise<void>;
  readonly clusterId: () => string | null;
  readonly logger: Logger;
  /** Backups streamed at once. @default 1 */
  readonly maxConcurrent?: number;
}

export interface BackupRoute {
  route(r: ParsedRequest): Promise<Reply> | null;
  /** Backups being prepared or streamed now. */
  readonly active: number;
}

export function backupRoute(options: BackupRouteOptions): BackupRoute {
  const maxConcurrent = options.maxConcurrent ?? 1;
  let active = 0;

  async function prepare(r: ParsedRequest): Promise<Reply> {
    await options.readBarrier(r.deadline);
    const target = options.node.appliedIndex;
    // The runtime answers with the newest snapshot's index; one taken while entries applied early
    // were ahead of the core (runtime.ts, canSnapshot) may lag the target: ask again, briefly.
    let index = await options.node.snapshotNow();
    while (index < target) {
      if (Date.now() > r.deadline) throw new ApiError('TIMEOUT', `no snapshot reached index ${target} within the request's deadline`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      index = await options.node.snapshotNow();
    }
    const snapDir = join(options.dataDir, 'snap');
    const file = (await listSnapshotFiles(snapDir)).find((f) => f.index === index);
    if (file === undefined) throw new ApiError('NOT_READY', 'the snapshot was replaced while being opened; retry', { retryAfter: 1 });
    // Opened now: a later snapshot may prune the file, and the open handle keeps it readable.
    const handle = await open(file.path, 'r');
    let size: number;
    try {
      size = (await handle.stat()).size;
    } catch (err) {
      await handle.close();
      throw err;
    }
    const head = encodeBackupHead({ clusterId: options.clusterId(), node: options.nodeId, index: file.index, term: file.term, snapshotBytes: size, createdAt: new Date().toISOString() });
    // The HTTP layer does not call stream() when the client left while this was prepared (or
    // answered it otherwise): the file and the slot are given back then too.
    let isStarted = false;
    const unclaimed = setTimeout(() => {
      if (isStarted) return;
      isStarted = true;
      void handle.close().catch(() => undefined);
      release();
    }, 10_000);
    unclaimed.unref();
    return {
      status: 200,
      stream: (res, headers) => {
        if (isStarted) {
          res.destroy();
          return;
        }
        isStarted = true;
        clearTimeout(unclaimed);
        void streamBackup(res, headers, head, handle, size, options.logger).finally(release);
      },
    };
  }

  function release(): void {
    active--;
  }

  return {
    get active() {
      return active;
    },
    route(r) {
      if (r.path !== SNAPSHOT_PATH) return null;
      try {
        expectMethod(r.method, ['GET']);
        allowParams(r.query, []);
      } catch (err) {
        return Promise.reject(err);
      }
      if (active >= maxConcurrent) return Promise.reject(new ApiError('OVERLOADED', `${active} backup(s) already being taken on this node; retry later`, { retryAfter: 5 }));
      active++;
      return prepare(r).then(
        (reply) => reply,
        (err: unknown) => {
          release();
          throw err;
        },
      );
    },
  };
}

async function streamBackup(res: ServerResponse, headers: Readonly<Record<string, string>>, head: Buffer, handle: FileHandle, size: number, logger: Logger): Promise<void> {
  let isGone = false;
  let wake: (() => void) | null = null;
  const onGone = (): void => {
    isGone = true;
    wake?.();
  };
  res.on('close', onGone);
  res.on('error', onGone);
  const write = async (chunk: Buffer): Promise<void> => {
    if (isGone) return;
    if (!res.write(chunk)) {
      const stalled = setTimeout(() => {
        logger.warn('backup client took nothing for a minute; dropping it', { stalledMs: STALL_MS });
        res.destroy();
      }, STALL_MS);
      await new Promise<void>((resolve) => {
        wake = resolve;
        res.once('drain', resolve);
      });
      clearTimeout(stalled);
      wake = null;
    }
  };
  try {
    res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(head.length + size + BACKUP_TRAILER_BYTES), 'cache-control': 'no-store' });
    const hash = backupHash();
    hash.update(head);
    await write(head);
    const buf = Buffer.alloc(Math.min(CHUNK_BYTES, Math.max(1, size)));
    let at = 0;
    while (at < size && !isGone) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - at), at);
      if (bytesRead === 0) throw new Error(`the snapshot file ended at ${at} of ${size} bytes`);
      const chunk = Buffer.from(buf.subarray(0, bytesRead));
      hash.update(chunk);
      await write(chunk);
      at += bytesRead;
    }
    await write(hash.digest());
    if (!isGone) res.end();
  } catch (err) {
    // The length was promised: a backup cut short is refused by the client (size and checksum).
    logger.error('backup stream failed', { error: String(err) });
    res.destroy();
  } finally {
    res.off('close', onGone);
    await handle.close().catch(() => undefined);
  }
}
