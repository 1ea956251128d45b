// What every etcd service handler shares: the running node's parts, the response header etcd's
// clients read (cluster id, member id, revision, raft term), the caller's principal (a token as
// gRPC metadata, as etcd's clients send it after Authenticate, or `authorization: Bearer`), and
// the call's deadline.
import type { Metadata } from '@grpc/grpc-js';
import type { NodeParts } from '../server/node-server.js';
import { isPermitted, type Action, type Principal } from '../server/auth.js';
import { clusterUint64, memberUint64 } from './ids.js';
import { ETCD_ERRORS } from './errors.js';

export interface ResponseHeader {
  cluster_id: string;
  member_id: string;
  revision: number;
  raft_term: number;
}

export interface EtcdLimits {
  /** Largest request message (etcd's --max-request-bytes 1.5 MiB, plus gRPC's overhead). */
  readonly maxRequestBytes: number;
  /** Watches open on the node at most (its --max-watchers, shared with the HTTP API). */
  readonly maxWatchers: number;
  /** Watches on one stream at most. */
  readonly maxWatchesPerStream: number;
  /** Open connections to the gRPC port (the node's --max-client-connections). */
  readonly maxConnections: number;
  /** Concurrent streams per HTTP/2 connection. */
  readonly maxStreamsPerConnection: number;
  /** Keep-alive requests per second one LeaseKeepAlive stream may send; more are dropped unanswered. */
  readonly maxKeepAlivesPerSecond: number;
}

export class EtcdContext {
  readonly memberId: string;
  /** Lock and Campaign calls waiting in line now (capped at maxWatchers; one line hub serves them all). */
  waiting = 0;

  constructor(
    readonly parts: NodeParts,
    readonly limits: EtcdLimits,
  ) {
    this.memberId = memberUint64(parts.cfg.id);
  }

  get requestTimeoutMs(): number {
    return this.parts.cfg.requestTimeoutMs;
  }

  /** The header of an answer: `revision` defaults to the store's revision now. */
  header(revision: number = this.parts.kv.revision): ResponseHeader {
    return { cluster_id: clusterUint64(this.parts.service.clusterId()), member_id: this.memberId, revision, raft_term: this.parts.node.currentTerm };
  }

  /** When the call must be answered by: its gRPC deadline, capped at --request-timeout-ms. */
  deadline(callDeadline: Date | number | undefined): number {
    const cap = Date.now() + this.requestTimeoutMs;
    if (callDeadline === undefined) return cap;
    const at = callDeadline instanceof Date ? callDeadline.getTime() : callDeadline;
    return Number.isFinite(at) ? Math.min(at, cap) : cap;
  }

  /**
   * The principal a call's metadata names; null without --auth-file. With it, a missing token is
   * etcd's "user name is empty" and an unknown one its "invalid auth token".
   */
  principal(metadata: Metadata): Principal | null {
    const auth = this.parts.auth;
    if (auth === undefined) return null;
    const token = firstString(metadata.get('token')) ?? bearer(firstString(metadata.get('authorization')));
    if (token === undefined) throw ETCD_ERRORS.userEmpty();
    const principal = auth.authenticate(token);
    if (principal === null) throw ETCD_ERRORS.invalidAuthToken();
    return principal;
  }

  /** etcd's "permission denied" unless `principal` (null: no auth) may do every action. */
  authorize(principal: Principal | null, actions: readonly Action[]): void {
    if (principal === null) return;
    for (const a of actions) if (!isPermitted(principal, a)) throw ETCD_ERRORS.permissionDenied();
  }
}

function firstString(values: readonly (string | Buffer)[]): string | undefined {
  const v = values[0];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.toString('utf8');
}

function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +(\S{1,4096})\s*$/i.exec(header);
  return m === null ? undefined : m[1];
}
