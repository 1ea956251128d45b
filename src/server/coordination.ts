// The coordination API over HTTP (API.md "Coordination"): compaction of the store's history, by
// request (POST /v1/compact) and by the leader on a schedule (--auto-compaction-mode/-retention,
// etcd's flags). Every change goes through the log as a command, so every replica's history is
// the same (src/kv/state-machine.ts).
import type { RaftNode } from '../node/index.js';
import type { KvResult, KvStateMachine } from '../kv/index.js';
import { ApiError } from './errors.js';
import type { ParsedRequest } from './api-types.js';
import { replyOrError, allowParams, expectMethod, fields, parseJson, revisionHeader, type Reply } from './http-util.js';
import { encodeChecked, settle, unexpected } from './kv-backend.js';
import type { Logger } from './logger.js';
import type { KvService } from './service.js';

/** What the routes need of the service: proposing a command, as a client's write is proposed. */
export type CommandWriter = Pick<KvService<unknown>, 'write'>;

export interface CoordinationOptions {
  readonly service: CommandWriter;
  readonly kv: KvStateMachine;
}

export function coordinationRoutes(options: CoordinationOptions): (r: ParsedRequest) => Promise<Reply> | null {
  return (r) => {
    if (r.path === '/v1/compact') return replyOrError(() => compact(options, r));
    return null;
  };
}

async function compact({ service, kv }: CoordinationOptions, r: ParsedRequest): Promise<Reply> {
  expectMethod(r.method, ['POST']);
  allowParams(r.query, []);
  const revision = fields(parseJson(r.body), ['revision']).revision;
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 1) throw new ApiError('BAD_REQUEST', '"revision" must be a whole number from 1');
  const data = encodeChecked(kv, { type: 'compact', revision, time: Date.now() });
  const result = settle((await service.write(data, false, r.deadline, r.principal?.name)) as KvResult | undefined);
  if (result.type !== 'compact') throw unexpected(result);
  return { status: 200, json: { revision: result.revision, compactRevision: result.compactRevision }, headers: revisionHeader(result.revision) };
}


export const AUTO_COMPACTION_MODES = ['periodic', 'revision'] as const;
export type AutoCompactionMode = (typeof AUTO_COMPACTION_MODES)[number];

export interface AutoCompaction {
  readonly mode: AutoCompactionMode;
  /**
   * periodic: milliseconds of history to keep; revision: revisions to keep. 0 turns it off.
   * The history lives in memory (and in snapshots), so the default keeps it bounded.
   */
  readonly retention: number;
}

export const DEFAULT_AUTO_COMPACTION: AutoCompaction = { mode: 'revision', retention: 100_000 };

/**
 * The leader compacts the history as etcd's compactor does:
 *   - revision mode: to `revision - retention`, once that is a tenth of the retention (at least
 *     1000 revisions) past the last compaction, so compactions come in batches, not per write;
 *   - periodic mode: to the revision the store had `retention` ms ago (sampled every tenth of
 *     the retention), once per tenth of the retention.
 * A new leader starts sampling afresh: it never compacts more than it has seen the time for.
 */
export function startAutoCompaction(
  auto: AutoCompaction,
  service: CommandWriter,
  node: RaftNode<unknown>,
  kv: KvStateMachine,
  requestTimeoutMs: number,
  logger: Logger,
  now: () => number = Date.now,
): NodeJS.Timeout | null {
  if (auto.retention <= 0) return null;
  const stepMs = auto.mode === 'periodic' ? Math.max(1000, Math.min(auto.retention / 10, 60 * 60 * 1000)) : 1000;
  let samples: { at: number; revision: number }[] = [];
  let busy = false;
  const timer = setInterval(() => {
    if (!node.isLeader) {
      samples = [];
      return;
    }
    if (busy || !node.status().hasCommittedInTerm) return;
    let target: number;
    if (auto.mode === 'revision') {
      target = kv.revision - auto.retention;
      if (target - kv.compactRevision < Math.max(1000, auto.retention / 10)) return;
    } else {
      const t = now();
      samples.push({ at: t, revision: kv.revision });
      // The newest sample at least `retention` old is what the store looked like then.
      let old: { at: number; revision: number } | undefined;
      while (samples.length > 1 && t - samples[1]!.at >= auto.retention) samples.shift();
      if (t - samples[0]!.at >= auto.retention) old = samples[0];
      if (old === undefined) return;
      target = old.revision;
      if (target <= kv.compactRevision) return;
    }
    const data = encodeChecked(kv, { type: 'compact', revision: target, time: now() });
    busy = true;
    service
      .write(data, false, now() + requestTimeoutMs)
      .then((answer) => {
        const r = answer as KvResult | undefined;
        if (r?.type === 'compact') logger.info('history compacted', { compactRevision: r.compactRevision, revision: r.revision });
      })
      .catch((err: unknown) => logger.debug('auto-compaction will be retried', { error: String(err) }))
      .finally(() => (busy = false));
  }, stepMs);
  timer.unref();
  return timer;
}

/** `--auto-compaction-retention`: in periodic mode a duration ("1h", "30m", "90s", or hours as a number, as etcd reads it); in revision mode a count. */
export function parseAutoCompactionRetention(mode: AutoCompactionMode, text: string): number | null {
  if (mode === 'revision') return /^\d{1,15}$/.test(text) ? Number(text) : null;
  const m = /^(\d{1,9}(?:\.\d{1,6})?)(ms|s|m|h)?$/.exec(text);
  if (m === null) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? 'h';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  return Number.isFinite(ms) ? Math.round(ms) : null;
}
