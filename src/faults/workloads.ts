// The client workloads of a fault run, recorded as they ran.
//
// register: concurrent clients do reads, writes and compare-and-sets on a few keys (a fresh set
//   of keys every `keyRotateMs`, so each key's history stays small enough to check). Every op is
//   recorded with its call and return times; the history is checked for linearizability against
//   the key-value model of src/check. Half the clients send each write once and record a
//   timeout as unknown; the other half retry a write whose outcome is unknown with the same
//   Idempotency-Key (API.md), so the server's at-most-once promise is what keeps their history
//   linearizable: a retried CAS that the server applied twice answers "compare failed" for a
//   write that did happen. Those clients also send one write in ten a second time after its
//   definite answer, with the same key, as a client that missed the answer would: the repeat
//   must answer exactly the first answer (`repeats`), which catches a write applied twice even
//   where no fault made an outcome unknown.
// set: clients add unique elements (one key each) with retries and Idempotency-Keys. At the end
//   every acknowledged add must be present (zero lost) and nothing present may be an element
//   never attempted or definitely refused (zero phantom).
//
// Outcomes: 200 (and 404 for a read, 412 for a CAS) is known. 503 NO_LEADER / NO_QUORUM /
// OVERLOADED, or a connection that was never made, means the request was refused before it was
// proposed (API.md): the op did not happen and is left out of the check. Everything else (504,
// no answer, a dropped connection, 503 STOPPED) is unknown: the op may take effect at any time
// after its call, or never.
import type { KvInput, KvOutput } from '../check/index.js';
import { errorCode, exchange, ExchangeError, newAgent, sleep, type Agent, type ClientSecurity, type Reply } from '../harness/index.js';
import type { Random } from './random.js';

/** One recorded op. `failed`: refused for sure, left out of the check. */
export interface RecordedOp {
  readonly process: string;
  readonly call: number;
  readonly ret: number | null;
  readonly input: KvInput;
  readonly output: KvOutput | null;
  readonly unknown?: true;
  readonly failed?: true;
  /** The node(s) the attempts went to. */
  readonly nodes: readonly string[];
  /** The last error, for ops that are not plainly ok. */
  readonly error?: string;
}

export interface WorkloadContext {
  /** Milliseconds since the run started. */
  now(): number;
  /** Client URLs of the current members, with the node ids. */
  endpoints(): readonly { readonly id: string; readonly url: string }[];
  readonly isStopped: () => boolean;
  /** A secure run's CA and token (https and a bearer token on every request); null when plain. */
  readonly security: ClientSecurity | null;
  /**
   * A 401 or 403: the harness's admin token was refused. The op stays unknown (conservative),
   * but the run reports it, since under faults it means a node lost track of who may speak
   * (say a forwarded request arriving without its principal).
   */
  readonly onAuthRefusal: (what: string) => void;
}

const REQUEST_TIMEOUT_MS = 1000;
const EXCHANGE_TIMEOUT_MS = 1500;
/** How long a retrying client keeps one logical write going. */
const RETRY_DEADLINE_MS = 4000;
const REFUSED_CODES = new Set(['NO_LEADER', 'NO_QUORUM', 'OVERLOADED']);

type Attempt = { kind: 'answer'; reply: Reply } | { kind: 'refused'; error: string } | { kind: 'unknown'; error: string };

async function attempt(ctx: WorkloadContext, agent: Agent, url: string, method: 'GET' | 'PUT', path: string, body?: string, idempotencyKey?: string): Promise<Attempt> {
  const headers: Record<string, string> = { 'request-timeout': String(REQUEST_TIMEOUT_MS) };
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  if (body !== undefined) headers['content-type'] = 'application/octet-stream';
  try {
    const reply = await exchange(url, path, { method, headers, timeoutMs: EXCHANGE_TIMEOUT_MS, agent, security: ctx.security, ...(body !== undefined ? { body } : {}) });
    if (reply.status === 503 && REFUSED_CODES.has(errorCode(reply))) return { kind: 'refused', error: `503 ${errorCode(reply)}` };
    if (reply.status === 200 || reply.status === 404 || reply.status === 412) return { kind: 'answer', reply };
    if (reply.status === 401 || reply.status === 403) ctx.onAuthRefusal(`${method} ${url}: ${reply.status} ${errorCode(reply)}`);
    return { kind: 'unknown', error: `${reply.status} ${errorCode(reply)}` };
  } catch (err) {
    if (err instanceof ExchangeError) return err.sent ? { kind: 'unknown', error: err.message } : { kind: 'refused', error: err.message };
    throw err;
  }
}

interface WriteOutcome {
  readonly result: Attempt;
  readonly nodes: string[];
  /** Some attempt may have been applied (so a final refusal is still unknown). */
  readonly mayHaveApplied: boolean;
}

/** One logical write: once, or retried with one Idempotency-Key until a definite answer. */
async function write(ctx: WorkloadContext, rng: Random, agent: Agent, path: string, body: string, idempotencyKey: string | undefined): Promise<WriteOutcome> {
  const started = ctx.now();
  const nodes: string[] = [];
  let mayHaveApplied = false;
  for (;;) {
    const target = rng.pick(ctx.endpoints());
    nodes.push(target.id);
    const result = await attempt(ctx, agent, target.url, 'PUT', path, body, idempotencyKey);
    if (result.kind === 'unknown') mayHaveApplied = true;
    if (result.kind === 'answer' || idempotencyKey === undefined || ctx.now() - started > RETRY_DEADLINE_MS || ctx.isStopped()) {
      return { result, nodes, mayHaveApplied };
    }
    await sleep(rng.int(20, 100));
  }
}

export interface RegisterWorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  readonly keyRotateMs: number;
}

/** What the retrying clients' repeated writes found (Idempotency-Key: the first answer, again). */
export interface RepeatRecord {
  /** Writes sent again after a definite answer, and how many of those got a definite answer too. */
  sent: number;
  answered: number;
  /** One line per repeat whose answer differed from the first. */
  readonly mismatches: string[];
}

/** The share of a retrying client's definitely answered writes it sends a second time. */
const REPEAT_SHARE = 0.1;

export interface RegisterWorkloadResult {
  readonly history: RecordedOp[];
  readonly repeats: RepeatRecord;
}

/** Runs the register workload until ctx.isStopped(); returns every op, and what the repeats found. */
export async function runRegisterWorkload(ctx: WorkloadContext, rng: Random, options: RegisterWorkloadOptions, runId: string): Promise<RegisterWorkloadResult> {
  const result: RegisterWorkloadResult = { history: [], repeats: { sent: 0, answered: 0, mismatches: [] } };
  await Promise.all(Array.from({ length: options.clients }, (_, i) => registerClient(ctx, rng.fork(i), options, i, i % 2 === 1, runId, result)));
  return result;
}

/**
 * Sends an answered write once more with its Idempotency-Key, to any member, and notes an answer
 * that is definite and not the first one (the status, and for a 200 the body: `{"index": N}`
 * names the entry that applied it). A repeat without a definite answer proves nothing.
 */
async function repeatWrite(ctx: WorkloadContext, rng: Random, agent: Agent, path: string, body: string, idempotencyKey: string, first: Reply, repeats: RepeatRecord): Promise<void> {
  const target = rng.pick(ctx.endpoints());
  repeats.sent++;
  const again = await attempt(ctx, agent, target.url, 'PUT', path, body, idempotencyKey);
  if (again.kind !== 'answer') return;
  repeats.answered++;
  const same = again.reply.status === first.status && (first.status !== 200 || again.reply.body.equals(first.body));
  if (!same) {
    repeats.mismatches.push(`PUT ${path} (Idempotency-Key ${idempotencyKey}): first ${first.status} ${first.body.toString('utf8')}, again at ${target.id} ${again.reply.status} ${again.reply.body.toString('utf8')}`);
  }
}

async function registerClient(ctx: WorkloadContext, rng: Random, options: RegisterWorkloadOptions, index: number, retries: boolean, runId: string, out: RegisterWorkloadResult): Promise<void> {
  const history = out.history;
  const agent = newAgent(ctx.security);
  const process = `${retries ? 'r' : 'c'}${index}`;
  const lastSeen = new Map<string, string | null>();
  let seq = 0;
  try {
    while (!ctx.isStopped()) {
      const generation = Math.floor(ctx.now() / options.keyRotateMs);
      const key = `lin/${generation}/${rng.int(0, options.keys - 1)}`;
      const path = `/v1/kv/${encodeURIComponent(key)}`;
      const dice = rng.float();
      const call = ctx.now();
      if (dice < 0.5) {
        const target = rng.pick(ctx.endpoints());
        // A third of the reads by the leader lease (thesis §6.4.1), with the leader paused and
        // resumed under them (SIGSTOP in the pause faults): they must be as linearizable.
        const consistency = dice < 0.5 / 3 ? '&consistency=lease' : '';
        const result = await attempt(ctx, agent, target.url, 'GET', `${path}?raw${consistency}`);
        const ret = ctx.now();
        const input: KvInput = { type: 'get', key };
        if (result.kind === 'answer' && (result.reply.status === 200 || result.reply.status === 404)) {
          const value = result.reply.status === 200 ? result.reply.body.toString('utf8') : null;
          lastSeen.set(key, value);
          history.push({ process, call, ret, input, output: { type: 'get', value }, nodes: [target.id] });
        } else {
          const error = result.kind === 'answer' ? `${result.reply.status}` : result.error;
          history.push({ process, call, ret: null, input, output: null, ...(result.kind === 'refused' ? { failed: true as const } : { unknown: true as const }), nodes: [target.id], error });
          await sleep(rng.int(10, 50));
        }
        continue;
      }
      seq++;
      const value = `${index}.${seq}`;
      const isCas = dice >= 0.75;
      const expected = lastSeen.has(key) ? (lastSeen.get(key) as string | null) : null;
      const query = !isCas ? '' : expected === null ? '?prevExist=false' : `?prevValue=${encodeURIComponent(expected)}`;
      const input: KvInput = isCas ? { type: 'cas', key, expected, value } : { type: 'put', key, value };
      const idempotencyKey = retries ? `${runId}-${process}/${seq}` : undefined;
      const outcome = await write(ctx, rng, agent, `${path}${query}`, value, idempotencyKey);
      const ret = ctx.now();
      const r = outcome.result;
      if (r.kind === 'answer' && (r.reply.status === 200 || (isCas && r.reply.status === 412))) {
        const ok = r.reply.status === 200;
        if (ok) lastSeen.set(key, value);
        const output: KvOutput = isCas ? { type: 'cas', ok } : { type: 'put' };
        history.push({ process, call, ret, input, output, nodes: outcome.nodes });
        // After the op's return: the history holds it as answered, and a repeat changes nothing.
        if (idempotencyKey !== undefined && rng.float() < REPEAT_SHARE) await repeatWrite(ctx, rng, agent, `${path}${query}`, value, idempotencyKey, r.reply, out.repeats);
      } else {
        const error = r.kind === 'answer' ? `${r.reply.status} ${errorCode(r.reply)}` : r.error;
        const isRefused = r.kind === 'refused' && !outcome.mayHaveApplied;
        history.push({ process, call, ret: null, input, output: null, ...(isRefused ? { failed: true as const } : { unknown: true as const }), nodes: outcome.nodes, error });
        await sleep(rng.int(10, 50));
      }
    }
  } finally {
    agent.destroy();
  }
}

/** What happened to each attempted element of the set workload. */
export type AddOutcome = 'ok' | 'unknown' | 'failed';

export interface AddRecord {
  readonly outcome: AddOutcome;
  /** When the client got its last answer (ms of run time). */
  readonly ret: number;
}

export interface SetWorkloadResult {
  readonly adds: Map<string, AddRecord>;
  /** Prefixes (`set/c<i>/<bucket>/`) that together cover every attempted element. */
  readonly prefixes: Set<string>;
}

export async function runSetWorkload(ctx: WorkloadContext, rng: Random, clients: number, runId: string): Promise<SetWorkloadResult> {
  const result: SetWorkloadResult = { adds: new Map(), prefixes: new Set() };
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const r = rng.fork(1000 + i);
      const agent = newAgent(ctx.security);
      try {
        for (let seq = 0; !ctx.isStopped(); seq++) {
          const prefix = `set/c${i}/${String(Math.floor(seq / 1000)).padStart(4, '0')}/`;
          const element = `${prefix}${String(seq).padStart(7, '0')}`;
          result.prefixes.add(prefix);
          const outcome = await write(ctx, r, agent, `/v1/kv/${encodeURIComponent(element)}`, '1', `${runId}-s${i}/${seq}`);
          const answered = outcome.result.kind === 'answer' && outcome.result.reply.status === 200;
          const refused = outcome.result.kind === 'refused' && !outcome.mayHaveApplied;
          result.adds.set(element, { outcome: answered ? 'ok' : refused ? 'failed' : 'unknown', ret: ctx.now() });
          if (!answered) await sleep(r.int(10, 50));
        }
      } finally {
        agent.destroy();
      }
    }),
  );
  return result;
}

/** The set's elements as `url` sees them (linearizable or stale); throws when it does not answer. */
export async function readSet(url: string, prefixes: Iterable<string>, consistency: 'linearizable' | 'stale', security: ClientSecurity | null): Promise<Set<string>> {
  const present = new Set<string>();
  const agent = newAgent(security);
  try {
    for (const prefix of prefixes) {
      const reply = await exchange(url, `/v1/kv?prefix=${encodeURIComponent(prefix)}&limit=10000&consistency=${consistency}`, { timeoutMs: 5000, agent, security, headers: { 'request-timeout': '4000' } });
      if (reply.status !== 200) throw new Error(`list ${prefix} on ${url}: ${reply.status} ${errorCode(reply)}`);
      const body = JSON.parse(reply.body.toString('utf8')) as { items: { key: string }[]; more: boolean };
      if (body.more) throw new Error(`list ${prefix} on ${url}: more than 10000 elements`);
      for (const item of body.items) present.add(item.key);
    }
  } finally {
    agent.destroy();
  }
  return present;
}
