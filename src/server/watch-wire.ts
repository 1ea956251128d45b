// The wire side of GET /v1/watch (docs/api.md "Watch"): what a request asks for, checked strictly
// (400 before anything streams), the event ids and the positions they name, and the JSON of one
// change. The hub that streams them is watch.ts.
import type { HistoryEvent, KvStateMachine } from '../kv/index.js';
import { compareKeys, valueToJson } from '../kv/index.js';
import { ApiError } from './errors.js';
import { allowParams, intParam } from './http-util.js';

/** `progressMs` (option and query parameter) is bounded to this: always under the 70 s idle timeout. */
export const PROGRESS_MS_MIN = 100;
export const PROGRESS_MS_MAX = 60_000;

/** Where a watcher is: the next event to look at is the `k`-th (from 0) of revision `revision`. */
export interface WatchPosition {
  readonly revision: number;
  readonly k: number;
}

/**
 * One key, the keys under a prefix, or (the etcd API's) the keys from `start` up to `end`
 * (exclusive; null: no upper bound).
 */
export type WatchFilter = { readonly key: string } | { readonly prefix: string } | { readonly start: string; readonly end: string | null };

export interface WatchRequest {
  readonly filter: WatchFilter;
  readonly start: WatchPosition;
  readonly prevValue: boolean;
  readonly progressMs: number;
}

export function filterMatches(filter: WatchFilter, key: string): boolean {
  if ('key' in filter) return key === filter.key;
  if ('prefix' in filter) return key.startsWith(filter.prefix);
  return compareKeys(key, filter.start) >= 0 && (filter.end === null || compareKeys(key, filter.end) < 0);
}

/** The position after the event an SSE id names: `R` → (R+1, 0), `R.k` → (R, k+1). Strict. */
export function positionAfterId(id: string): WatchPosition | null {
  const m = /^(0|[1-9][0-9]{0,15})(?:\.(0|[1-9][0-9]{0,8}))?$/.exec(id);
  if (m === null) return null;
  const revision = Number(m[1]);
  if (!Number.isSafeInteger(revision + 1)) return null;
  return m[2] === undefined ? { revision: revision + 1, k: 0 } : { revision, k: Number(m[2]) + 1 };
}

/** The id that resumes at `p`: the inverse of positionAfterId. */
export function idBefore(p: WatchPosition): string {
  return p.k === 0 ? String(p.revision - 1) : `${p.revision}.${p.k - 1}`;
}

/** The id of the event at (revision, k): `R` when the watcher gets no later event of revision R. */
export function eventId(revision: number, k: number, isLastOfRevision: boolean): string {
  return isLastOfRevision ? String(revision) : `${revision}.${k}`;
}

/** The JSON of one change as a watch event (etcd's shape: a delete has value "" and zeros). */
export function watchEventJson(ev: HistoryEvent, withPrevValue: boolean): string {
  const rec = ev.record;
  const body: Record<string, unknown> =
    rec === null
      ? { type: 'delete', key: ev.key, value: '', createRevision: 0, modRevision: ev.revision, version: 0, lease: 0 }
      : {
          type: 'put',
          key: ev.key,
          ...valueToJson(rec.toRecord().value),
          createRevision: rec.createRevision,
          modRevision: rec.modRevision,
          version: rec.version,
          lease: rec.lease,
        };
  if (withPrevValue && ev.prev !== null) {
    const prev = valueToJson(ev.prev.toRecord().value);
    body['prevValue'] = prev.value;
    if (prev.encoding !== undefined) body['prevEncoding'] = prev.encoding;
  }
  return JSON.stringify(body);
}

/**
 * The watch a request asks for (400 for anything malformed). Exactly one of `key` and `prefix`;
 * `fromRevision` (default: the next revision); `Last-Event-ID` (wins over fromRevision).
 */
export function parseWatchRequest(query: URLSearchParams, lastEventId: string | string[] | undefined, kv: Pick<KvStateMachine, 'revision' | 'limits'>, defaultProgressMs: number): WatchRequest {
  allowParams(query, ['key', 'prefix', 'fromRevision', 'prevValue', 'progressMs']);
  for (const name of query.keys()) if (query.getAll(name).length > 1) throw new ApiError('BAD_REQUEST', `${name} is given more than once`);
  const key = query.get('key');
  const prefix = query.get('prefix');
  if ((key === null) === (prefix === null)) throw new ApiError('BAD_REQUEST', 'a watch needs exactly one of key=K and prefix=P (prefix may be empty: every key)');
  if (key === '') throw new ApiError('BAD_KEY', 'the key is empty (to watch every key, use prefix=)');
  const text = key ?? prefix!;
  if (Buffer.byteLength(text) > kv.limits.maxKeyBytes) throw new ApiError('KEY_TOO_LARGE', `the ${key !== null ? 'key' : 'prefix'} is longer than ${kv.limits.maxKeyBytes} bytes`);
  const filter: WatchFilter = key !== null ? { key } : { prefix: prefix! };
  const pv = query.get('prevValue');
  if (pv !== null && pv !== '' && pv !== 'true' && pv !== 'false') throw new ApiError('BAD_REQUEST', 'prevValue takes no value (or true or false)');
  const progressMs = intParam(query, 'progressMs', defaultProgressMs, PROGRESS_MS_MIN, PROGRESS_MS_MAX);
  let start: WatchPosition;
  if (lastEventId !== undefined) {
    const position = typeof lastEventId === 'string' ? positionAfterId(lastEventId.trim()) : null;
    if (position === null) throw new ApiError('BAD_REQUEST', 'Last-Event-ID must be an event id of this API: REVISION or REVISION.INDEX');
    start = position;
  } else if (query.has('fromRevision')) {
    start = { revision: intParam(query, 'fromRevision', 0, 1, Number.MAX_SAFE_INTEGER - 1), k: 0 };
  } else {
    start = { revision: kv.revision + 1, k: 0 };
  }
  return { filter, start, prevValue: pv !== null && pv !== 'false', progressMs };
}
