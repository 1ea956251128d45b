// Public exports of the storage layer: the contract, the file-backed WAL and its in-memory twin.
export type { RaftStorage } from './types.js';
export { MemoryStorage } from './memory-storage.js';
export { StorageError, StorageCorruptionError, StorageFailedError, StorageUsageError } from './errors.js';
export { FileStorage, DEFAULT_FILE_STORAGE_OPTIONS } from './file-storage.js';
export type { FileStorageOptions, StorageLogger } from './file-storage.js';
