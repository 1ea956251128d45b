// Which permissions a request needs (API.md "Security"): one table from route to actions, checked
// on the node that takes the request, and again on the leader for what a follower sends it: a
// forwarded request, or a proposal with its principal's name (proposals.ts, commandActions). Deny by
// default: a path this table does not know needs admin.
import { KvError, txnFromJson, DEFAULT_KV_LIMITS, type Command } from '../kv/index.js';
import { describeAction, isPermitted, type Action, type Authenticator, type Principal } from './auth.js';
import { ApiError } from './errors.js';
import { decodeKey, isLeasePath, parseJson } from './http-util.js';

export interface AccessRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: Uint8Array;
}

/** The actions `r` performs; a malformed request is left for its route to refuse (no actions). */
export function requestActions(r: AccessRequest): Action[] {
  const { method, path } = r;
  if (path.startsWith('/v1/kv/')) {
    const key = decodeKey(path.slice('/v1/kv/'.length));
    return [method === 'GET' || method === 'HEAD' ? { type: 'read', key } : { type: 'write', key }];
  }
  if (path === '/v1/kv' || path === '/v1/kv/') return [{ type: 'read-range', prefix: r.query.get('prefix') ?? '' }];
  if (path === '/v1/txn' && method === 'POST') return txnActions(r.body);
  // A revoke also needs write access to the lease's keys, checked by its route (lease-routes.ts).
  if (isLeasePath(path)) return [{ type: 'lease' }];
  const contended = /^\/v1\/(?:locks|elections)\/([^/]+)(?:\/[^/]+)?$/.exec(path);
  if (contended !== null) {
    // A lock or election NAME is the key prefix `NAME/` its contenders write under (locks.ts).
    let name: string;
    try {
      name = decodeURIComponent(contended[1]!);
    } catch {
      return [];
    }
    const range: Action = { type: 'read-range', prefix: `${name}/` };
    return method === 'GET' ? [range] : [range, { type: 'write', key: `${name}/` }];
  }
  if (path === '/v1/watch') {
    // A malformed watch (both or neither) is left for the route's 400.
    const key = r.query.get('key');
    const prefix = r.query.get('prefix');
    if ((key === null) === (prefix === null)) return [];
    return [key !== null ? { type: 'read', key } : { type: 'read-range', prefix: prefix! }];
  }
  if ((path === '/v1/status' || path === '/v1/members' || path === '/v1/configuration' || path === '/metrics') && method === 'GET') {
    return [{ type: 'cluster-read' }];
  }
  return [{ type: 'admin' }];
}

function txnActions(body: Uint8Array): Action[] {
  let txn;
  try {
    txn = txnFromJson(parseJson(body), 0, undefined, { ...DEFAULT_KV_LIMITS, maxKeyBytes: Number.MAX_SAFE_INTEGER, maxValueBytes: Number.MAX_SAFE_INTEGER });
  } catch (err) {
    // Malformed: the route answers 400 with the parser's reason; with no keys named, there is
    // nothing to authorize, and nothing will be applied.
    if (err instanceof KvError || err instanceof ApiError) return [];
    throw err;
  }
  return commandActions(txn);
}

/** The actions a key-value command performs (a follower's proposal, judged again by the leader). */
export function commandActions(cmd: Command): Action[] {
  // Compaction drops every key's history: admin only, as in etcd. A lease grant touches no key
  // (etcd asks no permission for it); a revoke deletes the lease's keys, which the route that
  // proposes it checks against the keys the lease holds (a lease's keys change as it lives).
  if (cmd.type === 'compact') return [{ type: 'admin' }];
  if (cmd.type === 'leaseGrant' || cmd.type === 'leaseRevoke') return [];
  if (cmd.type !== 'txn') return [{ type: 'write', key: cmd.key }];
  const actions: Action[] = cmd.compare.map((c) => ({ type: 'read', key: c.key }));
  for (const op of [...cmd.success, ...cmd.failure]) {
    if (op.type === 'put' || op.type === 'delete') actions.push({ type: 'write', key: op.key });
    else if (op.type === 'get') actions.push({ type: 'read', key: op.key });
    else if (op.type === 'deleteRange') actions.push({ type: 'read-range', prefix: commonPrefix(op.start, op.end) }, { type: 'write', key: commonPrefix(op.start, op.end) });
    else actions.push({ type: 'read-range', prefix: op.prefix });
  }
  return actions;
}

/** 401 for a principal this node's file does not know, 403 unless it may do every action. */
export function authorizeActions(auth: Authenticator, name: string | null, actions: readonly Action[]): void {
  const principal = name === null ? null : auth.byName(name);
  if (principal === null) throw new ApiError('UNAUTHENTICATED', `the principal ${JSON.stringify(name)} is not known to this node`);
  permitAll(principal, actions);
}

const CHALLENGE = { 'www-authenticate': 'Bearer realm="raftkv"' };

/** The principal a request's Authorization header names; 401 without a valid bearer token. */
export function authenticate(auth: Authenticator, header: string | undefined): Principal {
  if (header === undefined) throw new ApiError('UNAUTHENTICATED', 'this cluster requires a bearer token (Authorization: Bearer TOKEN)', { headers: CHALLENGE });
  const m = /^Bearer +(\S+)\s*$/i.exec(header);
  if (m === null) throw new ApiError('UNAUTHENTICATED', 'the Authorization header must be "Bearer TOKEN"', { headers: CHALLENGE });
  const principal = auth.authenticate(m[1]!);
  if (principal === null) throw new ApiError('UNAUTHENTICATED', 'the bearer token is not valid', { headers: CHALLENGE });
  return principal;
}

/** 403 unless `principal` may do everything `r` does. */
export function authorize(principal: Principal, r: AccessRequest): void {
  permitAll(principal, requestActions(r));
}

function permitAll(principal: Principal, actions: readonly Action[]): void {
  for (const action of actions) {
    if (!isPermitted(principal, action)) throw new ApiError('PERMISSION_DENIED', `${principal.name} may not ${describeAction(action)}`);
  }
}

/**
 * The longest prefix every key in [start, end) shares (end null: none, ''): a range is inside a
 * prefix permission only if this prefix is (a write to a key under it, or a read of it, is). The
 * range of the keys under P, [P, successor of P), is P itself.
 */
export function commonPrefix(start: string, end: string | null): string {
  if (end === null) return '';
  if (prefixSuccessor(start) === end) return start;
  const a = Array.from(start);
  const b = Array.from(end);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i).join('');
}

/**
 * The smallest string above every string that starts with `prefix`, in code point order (UTF-8
 * byte order): its last code point raised by one (surrogates skipped), or, at U+10FFFF, dropped
 * and the one before raised. Null: no bound (empty, or all U+10FFFF).
 */
export function prefixSuccessor(prefix: string): string | null {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) return points.join('') + String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1);
  }
  return null;
}
