// Public exports of the storage layer: the contract, the file-backed WAL and its in-memory twin,
// the data dir lock, and the private-file helper the server writes its own files with.
export type { RaftStorage } from './types.js';
export { MemoryStorage } from './memory-storage.js';
export { StorageError, StorageCorruptionError, StorageFailedError, StorageUsageError, NoSpaceError } from './errors.js';
export { FileStorage, DEFAULT_FILE_STORAGE_OPTIONS, MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES } from './file-storage.js';
export type { FileStorageOptions, StorageLogger } from './file-storage.js';
export { acquireDataDirLock, DataDirLockedError, DATA_DIR_LOCK_FILE } from './dir-lock.js';
export type { DataDirLock, DataDirLockHolder } from './dir-lock.js';
export { writeFileAtomic } from './fs-util.js';
export { listSnapshotFiles, parseSnapshotFile } from './snapshot-file.js';
export type { SnapshotFile, SnapshotDataRange } from './snapshot-file.js';
export { FileWindow } from './file-window.js';
