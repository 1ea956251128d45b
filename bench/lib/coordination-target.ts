// What the coordination benchmark (bench/coordination.ts, issue 12) needs of a system under test:
// writes, prefix watches from a revision, leases and their keep-alives, and a lock. raftkv's
// side speaks its HTTP API (raftkv-coordination.ts), etcd's its native gRPC API
// (bench/grpc/etcd-coordination.ts); the measures (coordination.ts) drive either through this
// interface alone, so both systems meet the same client code, the same shapes of work and the
// same checks.
//
// Members are numbered from 0 in a fixed order (raftkv n1, n2, n3; etcd e1, e2, e3); every call
// names the member it goes to, and the system under test never moves it elsewhere (a follower
// forwards what needs the leader, as each system does on its own).
import type { SystemName } from './report.js';

/** One open watch. */
export interface WatchHandle {
  /** Ends the watch and its stream (or connection); no callback follows. */
  close(): void;
}

export interface WatchCallbacks {
  /** A put event of the watched prefix, as the client decoded it. */
  onPut(key: string): void;
  /** The stream ended or failed while open (not after close()). */
  onEnd(why: string): void;
}

export interface KeyWriter {
  /** Writes `key`; resolves once the write is acknowledged (committed and applied). */
  put(key: string, value: Buffer): Promise<void>;
  close(): void;
}

/** One client's keep-alive channel: one renewal in flight at a time. */
export interface KeepAliveSession {
  /** Renews `lease` to its full TTL; resolves with the answer, rejects when refused or gone. */
  keepAlive(lease: string): Promise<void>;
  close(): void;
}

export interface LockGrant {
  /** The owner key; what unlock takes. */
  readonly key: string;
  /**
   * A fencing token that only grows from one holder to the next: raftkv's `revision` (the owner
   * key's createRevision); etcd's LockResponse header revision (when the owner was found first
   * in line: at least its key's create revision, above the previous owner's release).
   */
  readonly token: bigint;
}

/** One lock contender's client. */
export interface LockSession {
  /** Waits until `name` is held with `lease`. */
  lock(name: string, lease: string): Promise<LockGrant>;
  unlock(name: string, key: string): Promise<void>;
  close(): void;
}

export interface CoordinationTarget {
  readonly system: SystemName;
  /** Member names, in index order. */
  readonly memberNames: readonly string[];
  /** Index of the member that led when the target was made. */
  readonly leaderIndex: number;
  /** How watchers, keep-alives and lock calls reach the servers, printed with the results. */
  readonly notes: { readonly watch: string; readonly keepAlive: string; readonly lock: string };
  /** The store's revision now (as the leader has applied it). */
  revision(): Promise<number>;
  writer(member: number): KeyWriter;
  /** Watches every key under `prefix` from `fromRevision`; resolves once the server has taken the watch. */
  watch(member: number, prefix: string, fromRevision: number, callbacks: WatchCallbacks): Promise<WatchHandle>;
  /** Grants a lease of `ttlSeconds`; resolves with its id (decimal). */
  grantLease(member: number, ttlSeconds: number): Promise<string>;
  revokeLease(member: number, lease: string): Promise<void>;
  keepAliveSession(member: number): KeepAliveSession;
  lockSession(member: number): LockSession;
  /** Closes whatever the target itself holds open (shared channels, agents). */
  close(): void;
}
