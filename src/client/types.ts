// The shapes the raftkv client takes and returns: the JSON of ../../docs/api.md with values as
// bytes. Indexes are Raft log indexes, plain numbers (safe to 2^53).

export const CONSISTENCY_LEVELS = ['linearizable', 'lease', 'stale'] as const;
/** `linearizable` (ReadIndex, the default), `lease` (leader lease), `stale` (any node's state). */
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

export interface ClientOptions {
  /** Client URLs of the nodes, e.g. `http://127.0.0.1:7001`. At least one. */
  readonly endpoints: readonly string[];
  /** Total time one operation may take, every retry and backoff included. @default 10000 */
  readonly timeoutMs?: number;
  /** Retries after the first attempt (each may go to another node). @default 8 */
  readonly retries?: number;
  /** Time one HTTP attempt may take before the client moves on. @default min(timeoutMs, 5000) */
  readonly attemptTimeoutMs?: number;
  /** First backoff between attempts; it doubles per retry. @default 50 */
  readonly backoffMs?: number;
  /** Upper bound on one backoff, Retry-After included. @default 2000 */
  readonly maxBackoffMs?: number;
  /** Prefix of every Idempotency-Key; random per client instance unless given. No `/` or spaces. */
  readonly clientId?: string;
  /**
   * Bearer token sent as `Authorization: Bearer <token>` on every attempt, for nodes started with
   * `--auth-file`. Without it such nodes answer 401 (UnauthenticatedError).
   */
  readonly token?: string;
  /**
   * PEM certificate(s) of the CA that signed the nodes' certificates, for `https://` endpoints (a
   * cluster's `--trusted-ca-file`, or `raftkv cluster --secure`'s `pki/ca.crt`). It replaces
   * Node's default roots. @default Node's default CAs
   */
  readonly ca?: string | Buffer;
  /** PEM client certificate, for nodes started with `--client-cert-auth`; needs `key`. */
  readonly cert?: string | Buffer;
  /** PEM private key of `cert`. */
  readonly key?: string | Buffer;
  /**
   * A fetch to send requests with instead of the built-in node:http/node:https transport (tests,
   * proxies). It cannot be combined with `ca`, `cert` or `key`. @default the built-in transport
   */
  readonly fetch?: typeof fetch;
  /**
   * Requests to http:// endpoints share one raftkv-mux connection per node with every client of
   * this process, many in flight at once (docs/mux.md); false: one HTTP/1.1 keep-alive
   * connection per request in flight. A node that does not speak raftkv-mux gets HTTP/1.1 either
   * way. https:// endpoints use HTTP/1.1. @default true
   */
  readonly multiplex?: boolean;
}

export const DEFAULT_CLIENT_OPTIONS = {
  timeoutMs: 10_000,
  retries: 8,
  attemptTimeoutMs: 5_000,
  backoffMs: 50,
  maxBackoffMs: 2_000,
} as const;

export type Value = string | Uint8Array;

export interface KvRecord {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modIndex: number;
  readonly version: number;
  /** Store revision of the write that created the key (API.md, "Coordination"). */
  readonly createRevision: number;
  /** Store revision of the key's last write. */
  readonly modRevision: number;
  /** The lease the key is attached to; 0 for none. */
  readonly lease: number;
}

/** A write's answer: its log index and the store revision after it. */
export interface WriteResult {
  readonly index: number;
  readonly revision: number;
}

export interface WriteOptions {
  /** Reuse a key from an earlier attempt (e.g. from an OutcomeUnknownError); normally left out. */
  readonly idempotencyKey?: string;
}

export interface PutOptions extends WriteOptions {
  /** Write only if the current value equals this (UTF-8; the server compares bytes). */
  readonly prevValue?: Value;
  /** Write only if the key's modIndex equals this. */
  readonly prevIndex?: number;
  /** `false`: create only; `true`: update only. */
  readonly prevExist?: boolean;
  /** Attach the key to this lease: it is deleted when the lease ends. */
  readonly lease?: number;
}

export interface DeleteOptions extends WriteOptions {
  readonly prevValue?: Value;
  readonly prevIndex?: number;
}

export interface ReadOptions {
  /** @default 'linearizable' */
  readonly consistency?: Consistency;
  /** Read the store as it was at this revision (back to the last compaction). */
  readonly revision?: number;
}

export interface ListResult {
  readonly items: readonly KvRecord[];
  /** More keys match the prefix than `limit` allowed. */
  readonly more: boolean;
}

export type TxnCompareTarget = 'value' | 'version' | 'createIndex' | 'modIndex' | 'createRevision' | 'modRevision' | 'lease';
export type TxnCompareOp = '=' | '!=' | '<' | '>';

/** One condition of a transaction, in the etcd style. */
export interface TxnCompare {
  readonly key: string;
  readonly target: TxnCompareTarget;
  readonly op: TxnCompareOp;
  readonly value: Value | number;
}

export type TxnOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Value; readonly lease?: number }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'get'; readonly key: string };

export interface TxnRequest {
  readonly compare: readonly TxnCompare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export interface TxnResult {
  /** Whether every compare held (so `success` ran, not `failure`). */
  readonly succeeded: boolean;
  readonly index: number;
  /** The store revision after the transaction. */
  readonly revision: number;
  /** The server's per-operation answers, as it sent them. */
  readonly responses: readonly unknown[];
}

export type MemberRole = 'voter' | 'learner';

export interface Member {
  readonly id: string;
  readonly peerAddr: string;
  readonly clientAddr: string;
  readonly role: MemberRole;
}

export interface NodeStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly members: readonly Member[];
  /** The cluster's random id, drawn at bootstrap; null from a node too old to report it. */
  readonly clusterId: string | null;
  /** Alarms raised on the node, e.g. `NO_SPACE` (writes refused until space is freed). */
  readonly alarms: readonly string[];
}

export interface AddMemberRequest {
  readonly id: string;
  readonly peerAddr: string;
  readonly clientAddr: string;
  /** A voter joins as a learner first and is promoted once caught up. @default 'voter' */
  readonly role?: MemberRole;
}

/** GET /readyz (200): the node knows a leader that confirmed a quorum, and has applied what it had committed. */
export interface ReadyStatus {
  readonly ready: true;
  readonly id: string;
  readonly leader: string;
  /** The leader's commit index, confirmed by a quorum when asked (thesis §6.4). */
  readonly readIndex: number;
  readonly appliedIndex: number;
}

/** GET /v1/configuration: a node's own view of the membership. */
export interface ConfigurationStatus {
  readonly id: string;
  readonly term: number;
  readonly voters: readonly string[];
  readonly votersOutgoing: readonly string[];
  readonly learners: readonly string[];
  /** C_old,new is in force (thesis §4.3). */
  readonly joint: boolean;
  readonly configIndex: number;
  /** The configuration entry is not known to be committed yet: a change is under way. */
  readonly pending: boolean;
}

/** One endpoint's answer to `readyOfAll()`. */
export interface EndpointReadiness {
  readonly endpoint: string;
  /** `GET /readyz` answered 200: the node knows a leader with a quorum and has applied what it committed. */
  readonly isReady: boolean;
  /** The leader's id, when ready. */
  readonly leader: string | null;
  /** Why not ready: the node's error code (`NOT_READY`, `UNAUTHENTICATED`, ...) or the client's (`UNREACHABLE`, ...); null when ready. */
  readonly code: string | null;
  /** The node's reason, or why it gave none; null when ready. */
  readonly reason: string | null;
}

/** One endpoint's answer to `statusOfAll()`: its status, or why it gave none. */
export type EndpointStatus =
  | { readonly endpoint: string; readonly status: NodeStatus }
  | { readonly endpoint: string; readonly error: Error };
