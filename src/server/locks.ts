// Distributed locks and elections over the replicated store, with etcd's v3lock/v3election
// semantics (API.md "Coordination"). A contender writes its own key `NAME/LEASE` (the lease id in
// hex) attached to its lease, in a transaction that creates it only if absent; the key's
// createRevision is its place in line and, for a lock, its fencing token: revisions only grow, so
// each holder's token is larger than every earlier holder's. The contender holds the lock (or
// leads the election) once no key under `NAME/` was created before its own. When its lease ends
// its key goes, and the next in line takes over.
//
// Any node answers from its own applied state: once it has applied the contender's key, every
// key created before it is applied too, and keys created later can only come after it in line,
// so "no earlier key left" is a fact that no later write can undo. Waiting costs a check per
// applied change under the name, not a poll, and one store listener for all waiters (lock-lines.ts).
import type { ServerResponse } from 'node:http';
import { valueToJson, type KvRecord, type StoredRecord, type KvResult, type KvStateMachine, type TxnCommand } from '../kv/index.js';
import { prefixSuccessor } from './access.js';
import { ApiError } from './errors.js';
import type { ParsedRequest } from './api-types.js';
import { replyOrError, allowParams, decodeKey, expectMethod, fields, parseJson, revisionHeader, type Reply } from './http-util.js';
import { encodeChecked, settle, unexpected } from './kv-backend.js';
import type { CommandWriter } from './coordination.js';
import { lineHubOf } from './lock-lines.js';

export interface LockRoutesOptions {
  readonly service: CommandWriter;
  readonly kv: KvStateMachine;
  readonly maxKeyBytes: number;
  /** Lock and campaign requests that may wait in line on this node at once; more answer 503 OVERLOADED. @default 10000 */
  readonly maxWaiters?: number;
}

/** A contender's place in line under a name. */
export interface Contender {
  readonly key: string;
  /** The key's createRevision: its place in line, and a lock's fencing token. */
  readonly revision: number;
  readonly value: Uint8Array;
  readonly lease: number;
  /** The key's last write (a proclaim changes it) and its version. */
  readonly modRevision: number;
  readonly version: number;
}

const encoder = new TextEncoder();

/** Observers of elections one node serves at most (each is one connection and one small state). */
export const MAX_OBSERVERS = 10_000;
/** Lock and campaign requests waiting on one node at most by default (each one connection, a timer, a place in the line hub). */
export const MAX_WAITERS = 10_000;
/** An idle observe stream hears a comment this often, well inside the server's 70 s idle cut. */
const OBSERVE_KEEPALIVE_MS = 15_000;

export interface LockRoutes {
  (r: ParsedRequest): Promise<Reply> | null;
  /** Ends every observe stream (the node is stopping). */
  close(): void;
}

export function lockRoutes(options: LockRoutesOptions): LockRoutes {
  const observers = new Set<Observer>();
  const maxWaiters = options.maxWaiters ?? MAX_WAITERS;
  let waiting = 0;
  /** Waits in line, counted against --max-waiters; beyond it 503 OVERLOADED, before any key is written. */
  const acquireCounted = async (r: ParsedRequest, name: string, kind: 'lock' | 'election'): Promise<Reply> => {
    if (r.query.get('wait') === 'false') return acquire(options, r, name, kind);
    if (waiting >= maxWaiters) throw new ApiError('OVERLOADED', `this node has ${maxWaiters} lock and campaign requests waiting already; retry later or through another node`);
    waiting++;
    try {
      return await acquire(options, r, name, kind);
    } finally {
      waiting--;
    }
  };
  const routes = ((r: ParsedRequest): Promise<Reply> | null => {
    const m = /^\/v1\/(locks|elections)\/([^/]+)(?:\/([^/]+))?$/.exec(r.path);
    if (m === null) return null;
    const kind = m[1] as 'locks' | 'elections';
    return replyOrError(async () => {
      const name = decodeKey(m[2]!);
      checkName(name, options.maxKeyBytes);
      const rest = m[3] === undefined ? undefined : decodeKey(m[3]);
      if (kind === 'locks') {
        if (rest === undefined) {
          expectMethod(r.method, ['POST']);
          return acquireCounted(r, name, 'lock');
        }
        expectMethod(r.method, ['DELETE']);
        return release(options, r, name, rest);
      }
      if (rest === 'campaign') {
        expectMethod(r.method, ['POST']);
        return acquireCounted(r, name, 'election');
      }
      if (rest === 'proclaim') {
        expectMethod(r.method, ['POST']);
        return proclaim(options, r, name);
      }
      if (rest === 'observe') {
        expectMethod(r.method, ['GET']);
        allowParams(r.query, []);
        if (observers.size >= MAX_OBSERVERS) throw new ApiError('OVERLOADED', `this node serves ${MAX_OBSERVERS} election observers already; observe through another node`);
        return { status: 200, stream: (res, headers) => observe(options.kv, name, res, headers, observers) };
      }
      if (rest === undefined) {
        expectMethod(r.method, ['GET']);
        allowParams(r.query, []);
        const leader = lineLeader(options.kv, name);
        if (leader === undefined) throw new ApiError('NOT_FOUND', `the election ${JSON.stringify(name)} has no leader`, { headers: revisionHeader(options.kv.revision) });
        return { status: 200, json: contenderJson(leader), headers: revisionHeader(options.kv.revision) };
      }
      expectMethod(r.method, ['DELETE']);
      return release(options, r, name, rest);
    });
  }) as LockRoutes;
  routes.close = () => {
    for (const o of [...observers]) o.end();
  };
  return routes;
}

interface Observer {
  end(): void;
}

/**
 * GET /v1/elections/{name}/observe: the leader now, then each change of leader or of its value,
 * as Server-Sent Events (`data: {"key","value","revision","lease"}`, or `{"leader":null}` while
 * there is none). Only the latest state is kept: a client that reads slowly skips intermediate
 * leaders, never makes the node buffer them (an observer wants who leads now, not the history;
 * GET /v1/watch on the prefix gives every change).
 */
function observe(kv: KvStateMachine, name: string, res: ServerResponse, headers: Readonly<Record<string, string>>, observers: Set<Observer>): void {
  res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'close' });
  let last = '';
  let isBlocked = false;
  const send = (leader: Contender | undefined = lineLeader(kv, name)): void => {
    if (isBlocked || res.destroyed) return;
    const text = leader === undefined ? '{"leader":null}' : JSON.stringify(contenderJson(leader));
    if (text === last) return;
    last = text;
    isBlocked = !res.write(`id: ${kv.revision}\ndata: ${text}\n\n`);
  };
  // Told after apply (never inside it) whenever something under NAME/ changed.
  const unsubscribe = lineHubOf(kv).observe(name, (leader) => send(leader));
  const keepAlive = setInterval(() => {
    if (!isBlocked) isBlocked = !res.write(': keep-alive\n\n');
  }, OBSERVE_KEEPALIVE_MS);
  keepAlive.unref();
  const observer: Observer = { end: () => res.end() };
  observers.add(observer);
  res.on('drain', () => {
    isBlocked = false;
    send();
  });
  res.once('close', () => {
    observers.delete(observer);
    unsubscribe();
    clearInterval(keepAlive);
  });
  res.write('retry: 1000\n\n');
  send();
}

/**
 * The first in line under a name: the key with the smallest createRevision among all of them (no
 * limit: a list cut at N keys in key order could miss the true first and crown a second holder),
 * read from the store's own records; only the winner's value is copied.
 */
export function lineLeader(kv: KvStateMachine, name: string): Contender | undefined {
  const prefix = `${name}/`;
  let first: StoredRecord | undefined;
  kv.scan(prefix, prefixSuccessor(prefix), (rec) => {
    if (first === undefined || rec.createRevision < first.createRevision) first = rec;
    return true;
  });
  return first === undefined ? undefined : contenderOf(first.toRecord());
}

/** The key a lease contends with under a name (etcd's: the lease id in hex). */
export function contenderKey(name: string, lease: number): string {
  return `${name}/${lease.toString(16)}`;
}

async function acquire(options: LockRoutesOptions, r: ParsedRequest, name: string, kind: 'lock' | 'election'): Promise<Reply> {
  allowParams(r.query, kind === 'lock' ? ['wait'] : []);
  const wait = r.query.get('wait');
  if (wait !== null && wait !== 'true' && wait !== 'false') throw new ApiError('BAD_REQUEST', 'wait must be true or false');
  const body = fields(parseJson(r.body), kind === 'lock' ? ['lease'] : ['lease', 'value']);
  const lease = body.lease;
  if (typeof lease !== 'number' || !Number.isSafeInteger(lease) || lease < 1) throw new ApiError('BAD_REQUEST', '"lease" must be a lease id (grant one with POST /v1/leases)');
  let value = new Uint8Array(0);
  if (kind === 'election') {
    if (typeof body.value !== 'string') throw new ApiError('BAD_REQUEST', '"value" must be a string (what the leader proclaims)');
    value = encoder.encode(body.value);
  }
  const me = await contend(options, { name, lease, value, kind, writeDeadline: r.deadline, waitDeadline: wait === 'false' ? Date.now() : r.deadline, principal: r.principal?.name, explainWait: wait !== 'false' });
  return { status: 200, json: contenderJson(me), headers: revisionHeader(options.kv.revision) };
}

export interface ContendRequest {
  readonly name: string;
  readonly lease: number;
  /** An election's proclaimed value; empty for a lock. */
  readonly value: Uint8Array;
  readonly kind: 'lock' | 'election';
  /** The deadline of each write (the contender key, its withdrawal). */
  readonly writeDeadline: number;
  /** Until when to wait to be first in line (Infinity: until `signal`). */
  readonly waitDeadline: number;
  readonly principal?: string | undefined;
  /** Aborted: the caller gave up; the attempt is withdrawn as at the deadline. */
  readonly signal?: AbortSignal;
  /** The LOCK_HELD message says the attempt was withdrawn at the deadline. @default true */
  readonly explainWait?: boolean;
}

/**
 * Takes a place in line under `name` with `lease` (etcd's key `NAME/LEASE-HEX`, created only if
 * absent, attached to the lease), and waits until it is first: resolves with the contender then.
 * Throws ApiError LEASE_NOT_FOUND when the lease is gone, LOCK_HELD when the wait ended first
 * (the attempt this call created is withdrawn, so a contender the client gave up on never takes
 * the lock later).
 */
export async function contend({ service, kv }: Pick<LockRoutesOptions, 'service' | 'kv'>, c: ContendRequest): Promise<Contender> {
  const { name, lease, kind } = c;
  const key = contenderKey(name, lease);
  // Created only if absent, attached to the lease (a missing lease refuses the whole transaction).
  const txn: TxnCommand = {
    type: 'txn',
    time: Date.now(),
    compare: [{ key, target: 'createRevision', op: '=', value: 0 }],
    success: [{ type: 'put', key, value: c.value, lease }],
    failure: [{ type: 'get', key }],
  };
  const result = settle((await service.write(encodeChecked(kv, txn), true, c.writeDeadline, c.principal)) as KvResult | undefined);
  if (result.type !== 'txn') throw unexpected(result);
  let mine: number;
  let created = result.succeeded;
  if (result.succeeded) {
    mine = result.revision;
  } else {
    const got = result.responses[0];
    if (got?.type !== 'get' || got.record === null) throw new ApiError('INTERNAL', 'the contender key vanished between compare and read');
    mine = got.record.createRevision;
    created = false;
  }
  const outcome = await waitFirst(kv, name, key, mine, c.waitDeadline, c.signal);
  if (outcome.type === 'first') return outcome.me;
  if (outcome.type === 'lost') throw new ApiError('LEASE_NOT_FOUND', `the ${kind === 'lock' ? 'lock' : 'campaign'} key ${JSON.stringify(key)} is gone: its lease ${lease} ended`);
  // Not first by the deadline (or at once with wait=false): withdraw, only the key this request
  // created, and only that incarnation of it.
  if (created) {
    const withdraw: TxnCommand = { type: 'txn', time: Date.now(), compare: [{ key, target: 'createRevision', op: '=', value: mine }], success: [{ type: 'delete', key }], failure: [] };
    try {
      await service.write(encodeChecked(kv, withdraw), false, Date.now() + 5000, c.principal);
    } catch {
      // The lease's end removes it anyway; the answer below stands.
    }
  }
  const holder = outcome.holder;
  throw new ApiError('LOCK_HELD', `${kind === 'lock' ? 'the lock' : 'the election'} ${JSON.stringify(name)} is held by ${JSON.stringify(holder.key)} (since revision ${holder.revision})${c.explainWait === false ? '' : "; not acquired within the request's deadline, the attempt was withdrawn"}`, {
    details: { holder: contenderJson(holder) },
  });
}

type WaitOutcome = { type: 'first'; me: Contender } | { type: 'behind'; holder: Contender } | { type: 'lost' };

/** Resolves once `key` (created at `mine`) is first in line, gone, or the deadline passes. */
function waitFirst(kv: KvStateMachine, name: string, key: string, mine: number, deadline: number, signal?: AbortSignal): Promise<WaitOutcome> {
  const check = (leader: Contender | undefined = lineLeader(kv, name)): WaitOutcome => {
    const rec = kv.get(key);
    if (rec === null || rec.createRevision !== mine) return { type: 'lost' };
    return leader!.key === key ? { type: 'first', me: contenderOf(rec) } : { type: 'behind', holder: leader! };
  };
  const first = check();
  if (first.type !== 'behind' || Date.now() >= deadline || signal?.aborted === true) return Promise.resolve(first);
  return new Promise<WaitOutcome>((resolve) => {
    let done = false;
    const finish = (o: WaitOutcome): void => {
      if (done) return;
      done = true;
      cancel();
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(o);
    };
    const onAbort = (): void => finish(check());
    signal?.addEventListener('abort', onAbort);
    // Told (after apply, never inside it) when this key changed or is first in line: one store
    // listener for all waiters of the node (lock-lines.ts), not one each.
    const cancel = lineHubOf(kv).wait(name, key, (leader) => {
      const o = check(leader);
      if (o.type !== 'behind') finish(o);
    });
    // Past 2^31 - 1 ms a timer fires at once: a wait that long (Infinity) ends by its signal only.
    const ms = deadline - Date.now();
    const timer = ms < 2 ** 31 - 1 ? setTimeout(() => finish(check()), Math.max(0, ms)) : null;
  });
}

async function release(options: LockRoutesOptions, r: ParsedRequest, name: string, key: string): Promise<Reply> {
  allowParams(r.query, []);
  if (!key.startsWith(`${name}/`) || key.length === name.length + 1) throw new ApiError('BAD_REQUEST', `the key must be one that ${JSON.stringify(name)} gave out (${JSON.stringify(`${name}/…`)})`);
  const { revision, released } = await releaseKey(options, key, null, r.deadline, r.principal?.name);
  return { status: 200, json: { revision, released }, headers: revisionHeader(revision) };
}

/**
 * Deletes a contender key (unlock, resign): only the incarnation created at `createRevision` when
 * given (etcd's Resign), any otherwise (etcd's Unlock).
 */
export async function releaseKey({ service, kv }: Pick<LockRoutesOptions, 'service' | 'kv'>, key: string, createRevision: number | null, deadline: number, principal: string | undefined): Promise<{ revision: number; released: boolean }> {
  const del: TxnCommand = {
    type: 'txn',
    time: Date.now(),
    compare: createRevision === null ? [] : [{ key, target: 'createRevision', op: '=', value: createRevision }],
    success: [{ type: 'delete', key }],
    failure: [],
  };
  const result = settle((await service.write(encodeChecked(kv, del), false, deadline, principal)) as KvResult | undefined);
  if (result.type !== 'txn') throw unexpected(result);
  const released = result.succeeded && result.responses[0]?.type === 'delete' && result.responses[0].deleted;
  return { revision: result.revision, released };
}

/** The leader, and only the leader, changes its value (etcd's Proclaim): `{"key","value"}`. */
async function proclaim({ service, kv }: LockRoutesOptions, r: ParsedRequest, name: string): Promise<Reply> {
  allowParams(r.query, []);
  const body = fields(parseJson(r.body), ['key', 'value']);
  if (typeof body.key !== 'string' || typeof body.value !== 'string') throw new ApiError('BAD_REQUEST', '"key" and "value" must be strings');
  const revision = await proclaimValue({ service, kv }, name, body.key, null, encoder.encode(body.value), r.deadline, r.principal?.name);
  return { status: 200, json: { revision }, headers: revisionHeader(revision) };
}

/**
 * The leader `key` of election `name` sets its value (and `createRevision`, when given, must be
 * its leadership's). ApiError LOCK_HELD when it does not lead (now, or when the write applies).
 */
export async function proclaimValue({ service, kv }: Pick<LockRoutesOptions, 'service' | 'kv'>, name: string, key: string, createRevision: number | null, value: Uint8Array, deadline: number, principal: string | undefined): Promise<number> {
  const leader = lineLeader(kv, name);
  if (leader === undefined || leader.key !== key || (createRevision !== null && leader.revision !== createRevision)) throw new ApiError('LOCK_HELD', `${JSON.stringify(key)} does not lead the election ${JSON.stringify(name)}`);
  const txn: TxnCommand = {
    type: 'txn',
    time: Date.now(),
    compare: [{ key: leader.key, target: 'createRevision', op: '=', value: leader.revision }],
    success: [{ type: 'put', key: leader.key, value, lease: leader.lease }],
    failure: [],
  };
  const result = settle((await service.write(encodeChecked(kv, txn), true, deadline, principal)) as KvResult | undefined);
  if (result.type !== 'txn') throw unexpected(result);
  if (!result.succeeded) throw new ApiError('LOCK_HELD', `${JSON.stringify(key)} no longer leads the election ${JSON.stringify(name)}`);
  return result.revision;
}

function contenderOf(rec: KvRecord): Contender {
  return { key: rec.key, revision: rec.createRevision, value: rec.value, lease: rec.lease, modRevision: rec.modRevision, version: rec.version };
}

function contenderJson(c: Contender): Record<string, unknown> {
  return { key: c.key, revision: c.revision, lease: c.lease, ...valueToJson(c.value) };
}

/** A name must leave room for `/` and a lease id in hex under the key limit; no empty name. */
function checkName(name: string, maxKeyBytes: number): void {
  if (name.length === 0) throw new ApiError('BAD_REQUEST', 'the name is empty');
  if (Buffer.byteLength(name) + 15 > maxKeyBytes) throw new ApiError('KEY_TOO_LARGE', `the name leaves no room for a contender key within --max-key-bytes (${maxKeyBytes})`);
  if (/[\u0000-\u001f]/.test(name)) throw new ApiError('BAD_KEY', 'the name holds control characters');
}

