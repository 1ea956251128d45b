// Locks and elections for the client (docs/client.md "Locks and elections"): each is a key under
// the name, attached to a lease this client keeps alive (leases.ts), so that a client that dies
// or is cut off lets go within a TTL. The server waits for a turn within each request's deadline
// and withdraws an attempt it gives up on (src/server/locks.ts); this side asks again until the
// caller's own deadline or signal.
import { BadRequestError, LockHeldError, NotFoundError } from './errors.js';
import type { Answer, RequestSpec } from './http.js';
import { LeaseLostError, type KeptLease } from './leases.js';
import { badResponse, json, numberField } from './responses.js';
import { fromJsonValue } from './values.js';

/** What the calls need of the client. */
export interface LockCalls {
  request(spec: RequestSpec): Promise<Answer>;
  lease(ttlSeconds: number): Promise<KeptLease>;
}

export interface LockOptions {
  /** The TTL of the lease this lock is held with (a new one, kept alive until release). @default 10 */
  readonly ttlSeconds?: number;
  /** false: fail at once with LockHeldError when another holds it. @default true */
  readonly wait?: boolean;
  /** Give up (LockHeldError) after this long; the attempt is withdrawn. @default no limit */
  readonly timeoutMs?: number;
  /** Give up when aborted; the attempt is withdrawn. */
  readonly signal?: AbortSignal;
}

/** A lock this client holds. */
export interface HeldLock {
  readonly name: string;
  /** The contender key (`NAME/LEASE-IN-HEX`). */
  readonly key: string;
  /** The fencing token: larger than every earlier holder's. Hand it to what the lock guards. */
  readonly token: number;
  readonly lease: number;
  /** Resolves if the lease is lost while held: from then on someone else may hold the lock. */
  readonly lost: Promise<LeaseLostError>;
  /** Releases the lock and ends its lease. Safe to call twice. */
  release(): Promise<void>;
}

export interface Contender {
  readonly key: string;
  /** The key's createRevision: its place in line. */
  readonly revision: number;
  readonly lease: number;
  readonly value: Uint8Array;
}

/** An election this client leads (campaign()). */
export interface Leadership extends Contender {
  readonly name: string;
  readonly lost: Promise<LeaseLostError>;
  /** Changes the value the leader announces (only while it leads). */
  proclaim(value: string): Promise<void>;
  /** Steps down and ends the lease. Safe to call twice. */
  resign(): Promise<void>;
}

const segment = (s: string): string => encodeURIComponent(s);

/** Takes the lock, waiting for its turn (unless `wait: false`). */
export async function lock(calls: LockCalls, name: string, opts: LockOptions = {}): Promise<HeldLock> {
  checkName(name);
  const { lease, contender } = await contend(calls, `/v1/locks/${segment(name)}`, name, {}, opts, 'lock');
  let released = false;
  return {
    name,
    key: contender.key,
    token: contender.revision,
    lease: lease.id,
    lost: lease.lost,
    release: async () => {
      if (released) return;
      released = true;
      try {
        await calls.request({ method: 'DELETE', path: `/v1/locks/${segment(name)}/${segment(contender.key)}`, passStatuses: [404] });
      } finally {
        await lease.close();
      }
    },
  };
}

/** Campaigns in an election with `value`, waiting until this client leads. */
export async function campaign(calls: LockCalls, name: string, value: string, opts: Omit<LockOptions, 'wait'> = {}): Promise<Leadership> {
  checkName(name);
  const { lease, contender } = await contend(calls, `/v1/elections/${segment(name)}/campaign`, name, { value }, opts, 'election');
  let resigned = false;
  return {
    ...contender,
    name,
    lost: lease.lost,
    proclaim: async (next: string) => {
      await calls.request({ method: 'POST', path: `/v1/elections/${segment(name)}/proclaim`, body: JSON.stringify({ key: contender.key, value: next }), contentType: 'application/json' });
    },
    resign: async () => {
      if (resigned) return;
      resigned = true;
      try {
        await calls.request({ method: 'DELETE', path: `/v1/elections/${segment(name)}/${segment(contender.key)}`, passStatuses: [404] });
      } finally {
        await lease.close();
      }
    },
  };
}

/** The election's leader now, or null when there is none. */
export async function electionLeader(calls: LockCalls, name: string): Promise<Contender | null> {
  checkName(name);
  const answer = await calls.request({ method: 'GET', path: `/v1/elections/${segment(name)}`, passStatuses: [404] });
  if (answer.status === 404) return null;
  return contenderFromJson(json(answer), answer);
}

async function contend(
  calls: LockCalls,
  path: string,
  name: string,
  extra: Record<string, string>,
  opts: LockOptions,
  what: 'lock' | 'election',
): Promise<{ lease: KeptLease; contender: Contender }> {
  const deadline = opts.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.timeoutMs;
  const lease = await calls.lease(opts.ttlSeconds ?? 10);
  try {
    for (;;) {
      if (opts.signal?.aborted === true) throw new LockHeldError('ABORTED', `gave up on the ${what} ${JSON.stringify(name)}: aborted`, null);
      const query = opts.wait === false ? '?wait=false' : '';
      let answer: Answer;
      try {
        answer = await calls.request({ method: 'POST', path: `${path}${query}`, body: JSON.stringify({ lease: lease.id, ...extra }), contentType: 'application/json', passStatuses: [409] });
      } catch (err) {
        if (err instanceof NotFoundError) throw new LeaseLostError('LEASE_NOT_FOUND', lease.id, `lease ${lease.id} of the ${what} ${JSON.stringify(name)} ended while waiting`, err);
        throw err;
      }
      if (answer.status === 200) return { lease, contender: contenderFromJson(json(answer), answer) };
      // 409 LOCK_HELD: not our turn within the request's deadline (the server withdrew the attempt).
      if (opts.wait === false || Date.now() >= deadline) {
        const body = json(answer) as { error?: { message?: unknown } };
        throw new LockHeldError('LOCK_HELD', typeof body.error?.message === 'string' ? body.error.message : `the ${what} ${JSON.stringify(name)} is held`, 409);
      }
    }
  } catch (err) {
    await lease.close().catch(() => undefined);
    throw err;
  }
}

function contenderFromJson(raw: unknown, answer: Answer): Contender {
  const c = raw as { key?: unknown; value?: unknown; encoding?: unknown };
  if (c === null || typeof c !== 'object' || typeof c.key !== 'string' || typeof c.value !== 'string') throw badResponse('key/value', answer);
  return { key: c.key, revision: numberField(c, 'revision', answer), lease: numberField(c, 'lease', answer), value: fromJsonValue(c.value, c.encoding) };
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new BadRequestError('BAD_REQUEST', 'a lock or election name is a non-empty string', null);
}
