// FileStorage: RaftStorage on a local directory: the WAL (wal.ts) for hard state and log, and
// snapshot files (snapshot-file.ts). Layout: `<dir>/wal/*.wal`, `<dir>/snap/*.snap`.
// Recovery reconciles the two: the newest valid snapshot plus the log after it MUST cover every
// index without a hole (§7), or the node refuses to start.
//
// ONE PROCESS PER DATA DIR. FileStorage does not lock its directory: the server MUST take the
// data dir lock (acquireDataDirLock, dir-lock.ts) BEFORE it opens FileStorage and BEFORE
// anything else writes there (its own files included), and release it only AFTER close(). The
// lock covers the whole data dir, not just what FileStorage owns, and tests and tools open
// storage without it.
//
// PRIVACY. Directories are 0700 and files 0600 whatever the umask; open() tightens a data dir
// whose modes are wider, with one warning.
//
// A FULL DISK raises an alarm instead of failing the storage: NoSpaceError from sync(),
// saveSnapshot(), installSnapshot() and compact() leaves everything usable and queued, and
// `isOutOfSpace` (with `onNoSpace` and watchSpace()) says when space runs out and when it is back.
import { chmod, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry, HardState, InitialState, Snapshot, SnapshotMeta, SnapshotSource, SnapshotWriter } from '../raft/types.js';
import { NoSpaceError, StorageCorruptionError, StorageUsageError, isNoSpaceCode } from './errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, syncDirectory } from './fs-util.js';
import { SnapshotFileWriter, listSnapshotFiles, readSnapshotFile, readSnapshotFileSync, snapshotDataRange, verifySnapshotFile, writeSnapshotFile, type VerifiedSnapshotFile } from './snapshot-file.js';
import { FileWindow } from './file-window.js';
import type { SnapshotDataRange, SnapshotFile } from './snapshot-file.js';
import type { RaftStorage } from './types.js';
import { Wal } from './wal.js';
import { recoverWal } from './wal-recovery.js';
import { SKIPPED_ENTRY } from './record.js';
import { EntryArena } from '../raft/entry-arena.js';
import type { RecoveredWal, StorageLogger } from './wal-recovery.js';

export type { StorageLogger } from './wal-recovery.js';

/** Smallest `segmentBytes`: below a page or so, nearly every sync would start a segment. */
export const MIN_SEGMENT_BYTES = 1024;
/**
 * Largest `segmentBytes`: each segment is zero-filled in full ahead of time and read into one
 * buffer at recovery, so it must fit in memory comfortably.
 */
export const MAX_SEGMENT_BYTES = 1 << 30;

export interface FileStorageOptions {
  /**
   * The WAL preallocation size: each segment is created this large (zero-filled and synced
   * ahead of time, see wal.ts), and a new one is started once the active one reaches it. So the
   * disk needs this much free space beyond the log, and a full disk is noticed this early.
   * An integer from MIN_SEGMENT_BYTES (1 KiB, for tests) to MAX_SEGMENT_BYTES (1 GiB); a
   * production server wants MiBs.
   * @default 16 MiB
   */
  segmentBytes?: number;
  /**
   * Snapshots kept besides the newest (older ones are deleted after each save).
   * @default 2
   */
  olderSnapshotsKept?: number;
  /**
   * Where repair and permission warnings go.
   * @default console
   */
  logger?: StorageLogger;
  /**
   * Called whenever `isOutOfSpace` changes: `true` once the disk is too full (the next WAL
   * segment cannot be prepared, a write or a snapshot failed with ENOSPC), `false` once that
   * has cleared. Raised while the active segment still has room, so writes can be refused
   * before any fails. Also available to a runtime through watchSpace().
   * @default none
   */
  onNoSpace?: ((active: boolean) => void) | null;
}

export const DEFAULT_FILE_STORAGE_OPTIONS: Required<FileStorageOptions> = {
  segmentBytes: 16 * 1024 * 1024,
  olderSnapshotsKept: 2,
  logger: console,
  onNoSpace: null,
};

/** What open() spent, for the server's start log line ('storage opened') and benchmarks. */
export interface FileStorageOpenStats {
  /** Reading and checking every WAL segment, and building the log after the newest snapshot. */
  readonly walMs: number;
  /** Entries the recovered log holds after the snapshot it starts from. */
  readonly walEntries: number;
  /** Reading and checking the newest usable snapshot file, what of it was left once the WAL was done (its reads begin with the WAL's); 0 without one. */
  readonly snapshotMs: number;
  readonly snapshotBytes: number;
}

interface Reconciled {
  readonly state: InitialState;
  readonly snapshot: SnapshotFile | null;
  /** The chosen snapshot as checked while choosing it (its data left in the file): openSnapshot() opens it. */
  readonly verified: VerifiedSnapshotFile | null;
  /** Set when the log holds an index the snapshot covers with a different term (see below). */
  readonly discardAfter: SnapshotMeta | null;
}

export class FileStorage implements RaftStorage {
  private readonly snapDir: string;
  private readonly walDir: string;
  private readonly options: Required<FileStorageOptions>;
  private readonly wal: Wal;
  private snapshot: SnapshotFile | null;
  /**
   * The newest snapshot, checked by open() to choose it, until openSnapshot() opens it: a restart
   * checks the file once, and restores through it without reading its data into memory.
   */
  private verified: VerifiedSnapshotFile | null;
  /** The state recovered at open, handed out once by load() and then released. */
  private recovered: InitialState | null;
  /** A snapshot file written whose WAL marker is queued but not yet durable (a sync failed). */
  private unmarkedSnapshot: { readonly file: SnapshotFile; readonly kind: 'taken' | 'installed' } | null = null;
  /** The last snapshot save failed for want of space. */
  private isSnapshotOutOfSpace = false;
  /** The snapshot being stored, if any: one at a time (types.ts, "What may overlap"). */
  private storing: 'taken' | 'installed' | null = null;
  private compactionsInFlight = 0;
  private wasOutOfSpace = false;
  private readonly spaceListeners: ((isOutOfSpace: boolean) => void)[] = [];
  /** What open() spent (open() sets it). */
  openStats: FileStorageOpenStats = { walMs: 0, walEntries: 0, snapshotMs: 0, snapshotBytes: 0 };

  private constructor(dir: string, options: Required<FileStorageOptions>, wal: Wal, reconciled: Reconciled) {
    this.walDir = join(dir, 'wal');
    this.snapDir = join(dir, 'snap');
    this.options = options;
    this.wal = wal;
    this.snapshot = reconciled.snapshot;
    this.verified = reconciled.verified;
    this.recovered = reconciled.state;
    if (options.onNoSpace !== null) this.spaceListeners.push(options.onNoSpace);
  }

  /**
   * Opens (creating if needed) and recovers `dir`; throws StorageCorruptionError on damage.
   * The caller MUST hold the data dir lock already (see the header). Works on a full disk.
   */
  static async open(dir: string, options: FileStorageOptions = {}): Promise<FileStorage> {
    const resolved = { ...DEFAULT_FILE_STORAGE_OPTIONS, ...options };
    validateSegmentBytes(resolved.segmentBytes);
    const walDir = join(dir, 'wal');
    const snapDir = join(dir, 'snap');
    const created = new Set<string>();
    for (const folder of [dir, walDir, snapDir]) {
      if ((await mkdir(folder, { recursive: true, mode: PRIVATE_DIR_MODE })) !== undefined) created.add(folder);
    }
    await tightenModes(dir, [walDir, snapDir], created, resolved.logger);
    await syncDirectory(dir);
    // The WAL reports to the storage before the storage exists: until then there is nobody to tell.
    let storage: FileStorage | null = null;
    // The newest snapshot's name says where the log it leaves to replay begins: the WAL builds
    // no entry before that (reconcile re-reads the WAL whole if that snapshot proves unusable).
    const newest = (await listSnapshotFiles(snapDir))[0];
    const decodeFloor = newest?.index ?? 0;
    // The newest snapshot is nearly always the one chosen: its check's reads (thread-pool copies from
    // the page cache) run while the WAL is decoded on the loop, not after it.
    const early = newest === undefined ? null : { path: newest.path, read: verifySnapshotFile(newest.path) };
    // Settled in reconcile, or dropped if the WAL refuses first: never an unhandled rejection.
    early?.read.catch(() => undefined);
    const walStart = performance.now();
    const { wal, recovered } = await Wal.open(walDir, {
      segmentBytes: resolved.segmentBytes,
      logger: resolved.logger,
      onSpaceChange: () => storage?.reportSpace(),
      decodeFloor,
      // The entries a restart replays go straight into slabs the core's log keeps as they are
      // (raft/entry-arena.ts), Buffers as the log's own are: no view of a segment per entry,
      // and no second copy when the core builds its log.
      entryArena: new EntryArena(undefined, (bytes) => Buffer.alloc(bytes)),
    });
    try {
      const walMs = performance.now() - walStart;
      const snapshotStart = performance.now();
      const reconciled = await reconcile(recovered, snapDir, true, resolved.logger, { floor: decodeFloor, walDir }, early);
      storage = new FileStorage(dir, resolved, wal, reconciled);
      storage.openStats = {
        walMs,
        walEntries: reconciled.state.entries.length,
        snapshotMs: performance.now() - snapshotStart,
        snapshotBytes: reconciled.verified?.range.length ?? 0,
      };
      storage.reportSpace();
      if (reconciled.discardAfter !== null) {
        // Make the §7 discard durable, so later appends start from the snapshot. On a full disk
        // the marker stays queued, and the next sync writes it BEFORE anything appended later.
        wal.markSnapshot('installed', reconciled.discardAfter.index, reconciled.discardAfter.term);
        await wal.sync().catch((error: unknown) => {
          if (!(error instanceof NoSpaceError)) throw error;
        });
      }
      await storage.pruneSnapshots();
      return storage;
    } catch (error) {
      await wal.abandon();
      throw error;
    }
  }

  async load(): Promise<InitialState> {
    const recovered = this.recovered;
    this.recovered = null;
    if (recovered !== null) return recovered;
    // A later call re-reads what is on disk once any sync in flight has finished; writes still
    // queued are not durable and, as in MemoryStorage, not included.
    await this.wal.settled();
    const rescanned = await recoverWal(this.walDir, false, this.options.logger);
    return (await reconcile(rescanned, this.snapDir, false, this.options.logger)).state;
  }

  /**
   * Where the data of the newest snapshot lies in its file, if it is the one at (index, term);
   * else null. A reader of that range (file-window.ts) keeps the file open: it stays readable
   * after a later snapshot deletes its name.
   */
  snapshotDataRange(index: number, term: number): SnapshotDataRange | null {
    const file = this.snapshot;
    if (file === null || file.index !== index || file.term !== term) return null;
    return snapshotDataRange(file.path);
  }

  async loadSnapshot(): Promise<Snapshot | null> {
    return this.snapshot === null ? null : readSnapshotFile(this.snapshot.path);
  }

  /**
   * The snapshot loadSnapshot() would read, as checked by open(), its data read through windows
   * over its file (file-window.ts) instead of into memory: what a restart restores from
   * (RaftStorage.openSnapshot). Given out once, and only while that snapshot is still the
   * newest; null otherwise (loadSnapshot() then). A window keeps the file open: it stays
   * readable after a later snapshot deletes its name.
   */
  openSnapshot(): SnapshotSource | null {
    const verified = this.verified;
    this.verified = null;
    const file = this.snapshot;
    if (verified === null || file === null || verified.meta.index !== file.index || verified.meta.term !== file.term) return null;
    const { path, start, length } = verified.range;
    return {
      meta: verified.meta,
      bytes: length,
      window: (from, n) => {
        if (!(from >= 0 && n >= 0 && from + n <= length)) throw new RangeError(`[${from}, +${n}) is outside the snapshot's ${length} bytes`);
        return new FileWindow(path, start + from, n);
      },
    };
  }

  readSnapshot(): Snapshot | null {
    return this.snapshot === null ? null : readSnapshotFileSync(this.snapshot.path);
  }

  append(entries: readonly Entry[]): void {
    this.wal.append(entries);
  }

  setHardState(state: HardState): void {
    this.wal.setHardState(state);
  }

  sync(): Promise<void> {
    return this.wal.sync();
  }

  /**
   * True while the disk is too full: the next WAL segment cannot be prepared, or the last write
   * or snapshot failed with ENOSPC. Raised while the active segment still has room; cleared once
   * space is back (a preparation, a write or a snapshot succeeds).
   */
  get isOutOfSpace(): boolean {
    return this.wal.isOutOfSpace || this.isSnapshotOutOfSpace;
  }

  /** RaftStorage.watchSpace: `listener` hears every change of `isOutOfSpace`; returns it now. */
  watchSpace(listener: (isOutOfSpace: boolean) => void): boolean {
    this.spaceListeners.push(listener);
    return this.isOutOfSpace;
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.storeSnapshot(snapshot.meta, 'taken', () => writeSnapshotFile(this.snapDir, snapshot));
  }

  /**
   * A writer of a local snapshot into its file as it is serialized (SnapshotFileWriter): the
   * snapshot is never whole in memory. saveWrittenSnapshot() then stores it.
   */
  snapshotWriter(meta: SnapshotMeta): SnapshotFileWriter {
    return new SnapshotFileWriter(this.snapDir, meta, (error: unknown) => {
      if (!isNoSpaceCode(error)) return error instanceof Error ? error : new Error(String(error));
      this.setSnapshotOutOfSpace(true);
      return error instanceof NoSpaceError ? error : new NoSpaceError(error, 'saving a snapshot');
    });
  }

  /** saveSnapshot() of the snapshot `writer` (one of this storage's, all of it written) holds. */
  async saveWrittenSnapshot(writer: SnapshotWriter): Promise<void> {
    if (!(writer instanceof SnapshotFileWriter)) throw new StorageUsageError('a snapshot writer saved by another storage than the one that made it');
    await this.storeSnapshot(writer.meta, 'taken', () => writer.finish(), () => writer.abandon());
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    await this.storeSnapshot(snapshot.meta, 'installed', () => writeSnapshotFile(this.snapDir, snapshot));
  }

  /** Appends and syncs may go on meanwhile: only whole segments behind the active one go. */
  async compact(index: number): Promise<void> {
    if (this.storing === 'installed') throw new StorageUsageError('compact() while a snapshot is being installed');
    this.compactionsInFlight++;
    try {
      await this.wal.compact(Math.min(index, this.snapshot?.index ?? 0));
    } finally {
      this.compactionsInFlight--;
    }
  }

  async close(): Promise<void> {
    await this.wal.close();
  }

  /** Test hook standing for a crash: releases the files without writing anything queued. */
  async abandon(): Promise<void> {
    await this.wal.abandon();
  }

  /** Number of WAL segment files, for tests and metrics. */
  get segmentCount(): number {
    return this.wal.segmentCount;
  }

  /** fdatasync calls on the WAL so far, for tests and metrics. */
  get fdatasyncCount(): number {
    return this.wal.fdatasyncCount;
  }

  /**
   * Stores a snapshot of `meta` that `writeFile` writes durably (or, if the file is already
   * durable from a try the disk was too full to mark, gives up through `discard`).
   */
  private async storeSnapshot(meta: SnapshotMeta, kind: 'taken' | 'installed', writeFile: () => Promise<SnapshotFile>, discard?: () => void): Promise<void> {
    // Two at once would share the marker slot and prune each other's files; an install beside a
    // compaction would lower the segments' live indexes under it.
    if (this.storing !== null) throw new StorageUsageError(`a snapshot is stored while another is (${this.storing}): one at a time`);
    if (kind === 'installed' && this.compactionsInFlight > 0) throw new StorageUsageError('installSnapshot() while the log is being compacted');
    this.storing = kind;
    try {
      await this.storeSnapshotFile(meta, kind, writeFile, discard);
    } finally {
      this.storing = null;
    }
  }

  private async storeSnapshotFile(meta: SnapshotMeta, kind: 'taken' | 'installed', writeFile: () => Promise<SnapshotFile>, discard?: () => void): Promise<void> {
    const { index, term } = meta;
    let file: SnapshotFile;
    const unmarked = this.unmarkedSnapshot;
    if (unmarked !== null && unmarked.kind === kind && unmarked.file.index === index && unmarked.file.term === term) {
      // A retry after a full disk: the file is durable and its marker still queued. Writing it
      // again would need room for a second copy of what may be the largest file here.
      file = unmarked.file;
      discard?.();
    } else {
      try {
        // The file is durable BEFORE the WAL says so: a marker must never point at a missing file.
        file = await writeFile();
      } catch (error) {
        if (!isNoSpaceCode(error)) throw error;
        this.setSnapshotOutOfSpace(true);
        throw error instanceof NoSpaceError ? error : new NoSpaceError(error, 'saving a snapshot');
      }
      this.wal.markSnapshot(kind, index, term);
      this.unmarkedSnapshot = { file, kind };
    }
    await this.wal.sync();
    this.unmarkedSnapshot = null;
    this.setSnapshotOutOfSpace(false);
    if (this.snapshot === null || file.index >= this.snapshot.index) this.snapshot = file;
    await this.pruneSnapshots();
  }

  private setSnapshotOutOfSpace(value: boolean): void {
    this.isSnapshotOutOfSpace = value;
    this.reportSpace();
  }

  /** Tells the listeners when `isOutOfSpace` has changed since it was last reported. */
  private reportSpace(): void {
    const now = this.isOutOfSpace;
    if (now === this.wasOutOfSpace) return;
    this.wasOutOfSpace = now;
    for (const listener of this.spaceListeners) listener(now);
  }

  private async pruneSnapshots(): Promise<void> {
    const files = await listSnapshotFiles(this.snapDir);
    const keep = 1 + this.options.olderSnapshotsKept;
    const newest = this.snapshot?.index ?? 0;
    let kept = 0;
    let removed = false;
    for (const file of files) {
      if (file.index > newest) continue; // corrupt ones recovery skipped: left for the operator
      if (kept++ < keep) continue;
      await unlink(file.path);
      removed = true;
    }
    if (removed) await syncDirectory(this.snapDir);
  }
}

function validateSegmentBytes(value: number): void {
  if (!Number.isInteger(value) || value < MIN_SEGMENT_BYTES || value > MAX_SEGMENT_BYTES) {
    throw new StorageUsageError(`segmentBytes must be an integer from ${MIN_SEGMENT_BYTES} to ${MAX_SEGMENT_BYTES}, not ${String(value)}`);
  }
}

/**
 * Sets the data dir and its storage folders to 0700 and every file in those folders to 0600.
 * A data dir that was there before and had wider (or narrower) modes gets one warning naming
 * how many modes were changed: its data may have been readable by other users until now.
 */
async function tightenModes(dir: string, subdirs: readonly string[], created: ReadonlySet<string>, logger: StorageLogger): Promise<void> {
  let changed = 0;
  const notOwned: string[] = [];
  const fix = async (path: string, mode: number): Promise<void> => {
    const current = (await stat(path)).mode & 0o777;
    if (current === mode) return;
    try {
      await chmod(path, mode);
    } catch (error) {
      // Only the owner (or root) may chmod: a data dir someone else owns and lets us write is
      // theirs to tighten. Refusing to start over it would break a setup that worked.
      if ((error as { code?: unknown }).code !== 'EPERM') throw error;
      notOwned.push(path);
      return;
    }
    // A directory this open created can differ only by the umask: no news for the operator.
    if (!created.has(path)) changed++;
  };
  for (const folder of [dir, ...subdirs]) await fix(folder, PRIVATE_DIR_MODE);
  for (const folder of subdirs) {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      if (entry.isFile()) await fix(join(folder, entry.name), PRIVATE_FILE_MODE);
    }
  }
  if (changed > 0) {
    logger.warn(`raftkv storage: ${dir}: set ${changed} mode(s) to 0700 (directories) and 0600 (files); other users may have been able to read this data dir until now`);
  }
  if (notOwned.length > 0) {
    logger.warn(`raftkv storage: ${dir}: cannot make ${notOwned.length} path(s) private, this user does not own them (first: ${notOwned[0]}); their owner should chmod them to 0700/0600`);
  }
}

/**
 * Chooses the newest valid snapshot and checks the log joins it. A corrupt newer snapshot is
 * skipped (with a warning, renamed `.corrupt` when repairing) only if the log still holds every
 * index it covered; otherwise state would be missing, and recovery refuses.
 */
async function reconcile(
  wal: RecoveredWal,
  snapDir: string,
  repair: boolean,
  logger: StorageLogger,
  decoded: { readonly floor: number; readonly walDir: string } = { floor: 0, walDir: '' },
  early: { readonly path: string; readonly read: Promise<VerifiedSnapshotFile> } | null = null,
): Promise<Reconciled> {
  let chosen: SnapshotFile | null = null;
  let meta: SnapshotMeta | null = null;
  const skipped: { file: SnapshotFile; error: StorageCorruptionError }[] = [];
  let verified: VerifiedSnapshotFile | null = null;
  for (const file of await listSnapshotFiles(snapDir, repair)) {
    // Checked whole: the node restores from this very file next (openSnapshot()).
    let result: VerifiedSnapshotFile;
    try {
      result = await (file.path === early?.path ? early.read : verifySnapshotFile(file.path));
    } catch (err) {
      if (!(err instanceof StorageCorruptionError)) throw err;
      skipped.push({ file, error: err });
      continue;
    }
    chosen = file;
    meta = result.meta;
    verified = result;
    break;
  }
  const snapshotIndex = meta?.index ?? 0;
  if (snapshotIndex < decoded.floor) {
    // The newest snapshot was unusable, so the log from an older one (or from the start) is
    // needed after all: read the WAL again, every entry built this time. It was repaired already.
    wal = await recoverWal(decoded.walDir, false, logger);
  }
  const lastIndex = wal.nextIndex - 1;
  for (const { file, error } of skipped) {
    if (lastIndex < file.index || wal.logStart > snapshotIndex + 1) {
      throw new StorageCorruptionError(error.file, error.offset, `${error.reason}, and no older snapshot plus the log covers index ${file.index}`);
    }
    logger.warn(`raftkv storage: skipping corrupt snapshot (${error.message}); an older snapshot and the log cover it`);
    if (repair) await rename(file.path, `${file.path}.corrupt`);
  }
  if (wal.logStart > snapshotIndex + 1) {
    const where = wal.firstFile ?? snapDir;
    throw new StorageCorruptionError(where, 0, `the log starts at index ${wal.logStart} but the newest valid snapshot ends at ${snapshotIndex}: entries are missing`);
  }
  if (wal.markedSnapshotIndex > snapshotIndex) {
    logger.warn(`raftkv storage: the WAL records a snapshot at index ${wal.markedSnapshotIndex}, but the newest valid snapshot is at ${snapshotIndex}; the log covers the difference`);
  }
  // An install interrupted between the snapshot file and its WAL marker leaves the old log. §7:
  // keep entries after the snapshot only if the log agrees with it at its index.
  let entries: readonly Entry[] = wal.log.slice(Math.max(0, snapshotIndex + 1 - wal.logStart));
  if (entries[0] === SKIPPED_ENTRY) throw new Error(`the WAL was decoded from index ${decoded.floor}, but the log is needed from ${snapshotIndex + 1}`);
  let discardAfter: SnapshotMeta | null = null;
  if (meta !== null && lastIndex < snapshotIndex) {
    discardAfter = meta; // the log ends before the snapshot: it restarts after it
  } else if (meta !== null && snapshotIndex >= wal.logStart) {
    // Also when nothing follows the index: kept, that entry would discard at a later start
    // everything appended after the snapshot meanwhile.
    const atSnapshot = wal.log[snapshotIndex - wal.logStart]!;
    if (atSnapshot.term !== meta.term) {
      logger.warn(`raftkv storage: log entry ${snapshotIndex} has term ${atSnapshot.term}, the snapshot there has term ${meta.term}: discarding the log after it (§7)`);
      entries = [];
      discardAfter = meta;
    }
  }
  return {
    state: { hardState: wal.hardState, snapshot: meta, entries, applied: snapshotIndex },
    snapshot: chosen,
    verified,
    discardAfter,
  };
}
