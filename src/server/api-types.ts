// What the HTTP API needs of a node (KvApi) and the shapes it answers with: the seam between
// http-api.ts (routing, limits, security) and service.ts (the node behind it).
import type { IncomingMessage } from 'node:http';
import type { Member as MemberView, NodeStatus as StatusView, ReadyStatus as ReadyView } from '../client/types.js';
import type { Principal } from './auth.js';
export const CONSISTENCY_LEVELS = ['linearizable', 'lease', 'stale'] as const;
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

export interface WriteConditions {
  readonly prevValue?: Uint8Array;
  readonly prevIndex?: number;
  readonly prevExist?: boolean;
  /** A put's lease (not a condition, but travels with them): the key goes when the lease ends. */
  readonly lease?: number;
}

export interface KvRecordView {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modIndex: number;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease: number;
}

// The wire shapes clients read are declared once, with the typed client (src/client/types.ts).
export type { Member as MemberView, NodeStatus as StatusView, ReadyStatus as ReadyView, ConfigurationStatus as ConfigurationView } from '../client/types.js';

/** What a request needs of the node; the service implements it (leader-only parts included). */
export interface KvApi {
  readonly id: string;
  isLeader(): boolean;
  /**
   * Whether key reads and writes may be served here: on the leader, or on a follower that knows
   * one (writes go to it as proposals, reads ask it for a read index and are answered here).
   */
  servesKv(): boolean;
  /** The leader's client URL, if one is known. */
  leaderUrl(): string | null;
  /** The cluster this node belongs to, once known (API.md "Security"). */
  clusterId(): string | null;
  /** `principal`: who asked (with --auth-file); a follower sends it with the proposal, for the leader to judge again. */
  put(key: string, value: Uint8Array, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number, principal?: string): Promise<{ index: number; revision: number }>;
  delete(key: string, cond: WriteConditions, idempotencyKey: string | undefined, deadline: number, principal?: string): Promise<{ index: number; deleted: boolean; revision: number }>;
  /** `maxReplyBytes`: the transaction is refused (413, nothing applied) if its answer would be larger. */
  txn(body: unknown, idempotencyKey: string | undefined, deadline: number, maxReplyBytes: number, principal?: string): Promise<unknown>;
  /** Resolves once a read at `consistency` may be served from this node's state machine. */
  readBarrier(consistency: Consistency, deadline: number): Promise<void>;
  /** At `revision`: as the store was then (ApiError COMPACTED or FUTURE_REVISION). */
  get(key: string, revision?: number): KvRecordView | null;
  /** At most `limit` records whose JSON listing fits `maxBytes`; `more` when any were left out. */
  list(prefix: string, limit: number, maxBytes: number, revision?: number): { items: readonly KvRecordView[]; more: boolean };
  /** The store's revision as this node has applied it (the Raftkv-Revision header). */
  revision(): number;
  status(): StatusView;
  members(): readonly MemberView[];
  /** Resolves when ready (GET /readyz); rejects with ApiError NOT_READY saying why not. */
  ready(deadline: number): Promise<ReadyView>;
  validateKey(key: string): void;
  validateValue(value: Uint8Array): void;
}

export interface ForwardedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The principal the forwarding node authenticated (never a token); absent without --auth-file. */
  readonly principal?: string;
}

export interface ForwardedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface HttpTlsOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Trusted CA for client certificates (`--trusted-ca-file`). */
  readonly ca?: Buffer;
  /** Require a client certificate signed by `ca` (`--client-cert-auth`). */
  readonly requireClientCert: boolean;
}

export interface ParsedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: Uint8Array;
  readonly deadline: number;
  /** Who asked, when --auth-file is in force. */
  readonly principal: Principal | null;
}
