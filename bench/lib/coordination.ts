// The three measures of the coordination benchmark (issue 12), written once against
// CoordinationTarget so raftkv and etcd meet the same client code:
//
// - watch fan-out: W watchers of one prefix, watcher i on member i mod 3, all from the same
//   revision; one writer on the leader puts key after key under the prefix, closed loop (or at
//   most `rate` writes/s). Counts the put events all watchers receive per second, and the
//   delivery lag of each, two ways: from the moment the writer sent the write to the moment a
//   watcher decoded its event (commit included, never negative), and from the moment the writer
//   had the write's acknowledgement (an event that beat the acknowledgement counts 0). Every
//   watcher must see every write once, in order; after the writer stops, the run waits (up to
//   `drainMs`) for the stragglers, then counts what is missing, repeated or out of order.
// - lease keep-alives: N leases, C clients in a closed loop, each renewing its share of the
//   leases one at a time (runClosedLoop): keep-alives/s and latency.
// - lock handoffs: K contenders, each with its own lease and client, loop acquire → release on
//   one lock name, holding it for one turn of the event loop. Counts acquisitions per second and
//   acquire latency, and checks mutual exclusion from the client's side (an acquisition answered
//   while another contender holds the lock and has not yet sent its release is an overlap) and
//   that fencing tokens only grow.
import { performance } from 'node:perf_hooks';
import type { CoordinationTarget, LockSession, WatchHandle } from './coordination-target.js';
import { runClosedLoop, type LoadResult } from './load.js';
import { percentile } from './stats.js';
import { memberIndexFor, type Routing } from './workload.js';

export interface WatchFanoutOptions {
  readonly watchers: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly valueBytes: number;
  /** Writes per second at most; 0: closed loop (the next write as soon as the last is acknowledged). */
  readonly rate: number;
  /** After the writer stops, how long to wait for every watcher to have every event. */
  readonly drainMs: number;
  /** Watches opened at once while setting up. @default 50 */
  readonly openConcurrency?: number;
}

export interface WatchFanoutResult {
  readonly watchers: number;
  /** Writes acknowledged in the measured window, per second. */
  readonly writesPerSecond: number;
  /** Put events received by all watchers in the measured window, per second. */
  readonly eventsPerSecond: number;
  /** Lag of the events of writes sent in the measured window, from the write's send, ms. */
  readonly lagP50Ms: number;
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  /** The same events' lag from the write's acknowledgement, ms (0 for an event that came first). */
  readonly ackLagP50Ms: number;
  readonly ackLagP99Ms: number;
  /** Of those, events decoded before the writer had the acknowledgement. */
  readonly early: number;
  /** The writer's own latency (sent → acknowledged) in the measured window, ms. */
  readonly writeP50Ms: number;
  readonly writeP99Ms: number;
  /** Events every watcher should have had by the end of the drain (writes × watchers), and those received. */
  readonly expected: number;
  readonly delivered: number;
  /** Events out of order or repeated, over all watchers (a correct system has none). */
  readonly outOfOrder: number;
  /** Watches that ended while the run still needed them. */
  readonly watchEnded: number;
  readonly firstProblem: string | null;
  readonly writeErrors: number;
  /** How long the drain took (ms), up to drainMs. */
  readonly drainedMs: number;
  /** Client CPU (this process) per delivered event, µs. */
  readonly clientCpuUsPerEvent: number;
}

const WATCH_KEY_DIGITS = 9;

export async function runWatchFanout(t: CoordinationTarget, o: WatchFanoutOptions): Promise<WatchFanoutResult> {
  const prefix = `bench-watch-${process.pid}-${Date.now()}/`;
  const fromRevision = (await t.revision()) + 1;
  let ackAt = new Float64Array(1 << 14);
  let sentAt = new Float64Array(1 << 14);
  let writeLatencies = new Float64Array(1 << 12);
  let writeCount = 0;
  let writes = 0;
  let measureFrom = Number.POSITIVE_INFINITY;
  let measureTo = Number.POSITIVE_INFINITY;
  let firstMeasuredWrite = Number.POSITIVE_INFINITY;
  let eventsInWindow = 0;
  let delivered = 0;
  let early = 0;
  let outOfOrder = 0;
  let watchEnded = 0;
  let firstProblem: string | null = null;
  let lags = new Float64Array(1 << 16);
  let ackLags = new Float64Array(1 << 16);
  let lagCount = 0;
  let isClosing = false;
  const problem = (why: string): void => void (firstProblem ??= why);

  // Each watcher expects write 0, 1, 2, ... in this order, once each.
  const next = new Int32Array(o.watchers);
  const handles: WatchHandle[] = [];
  const open = async (w: number): Promise<void> => {
    const handle = await t.watch(w % t.memberNames.length, prefix, fromRevision, {
      onPut(key) {
        const now = performance.now();
        const index = Number(key.slice(prefix.length));
        delivered++;
        if (index !== next[w]) {
          outOfOrder++;
          problem(`watcher ${w} got write ${index} where it expected ${next[w]} (key ${key})`);
        }
        next[w] = Math.max(next[w]!, index + 1);
        if (now >= measureFrom && now <= measureTo) eventsInWindow++;
        if (index >= firstMeasuredWrite && now <= measureTo + o.drainMs) {
          const acked = index < writes ? ackAt[index]! : 0;
          let ackLag = 0;
          if (acked === 0 || acked > now) early++;
          else ackLag = now - acked;
          if (lagCount === lags.length) {
            lags = grow(lags);
            ackLags = grow(ackLags);
          }
          lags[lagCount] = now - sentAt[index]!;
          ackLags[lagCount++] = ackLag;
        }
      },
      onEnd(why) {
        if (isClosing) return;
        watchEnded++;
        problem(`watcher ${w} ended: ${why}`);
      },
    });
    handles.push(handle);
  };
  try {
    const width = o.openConcurrency ?? 50;
    for (let w = 0; w < o.watchers; w += width) {
      await Promise.all(Array.from({ length: Math.min(width, o.watchers - w) }, (_, k) => open(w + k)));
    }

    const writer = t.writer(t.leaderIndex);
    const value = Buffer.alloc(o.valueBytes, 'raftkv-watch-value-');
    let writeErrors = 0;
    const cpuBefore = process.cpuUsage();
    const start = performance.now();
    measureFrom = start + o.warmupMs;
    measureTo = measureFrom + o.durationMs;
    let writesInWindow = 0;
    try {
      for (let i = 0; ; i++) {
        const loopAt = performance.now();
        if (loopAt >= measureTo) break;
        if (o.rate > 0) {
          const slot = start + (i * 1000) / o.rate;
          if (slot > loopAt) await sleep(slot - loopAt);
        }
        const sendingAt = performance.now();
        if (firstMeasuredWrite === Number.POSITIVE_INFINITY && sendingAt >= measureFrom) firstMeasuredWrite = i;
        if (i === sentAt.length) {
          sentAt = grow(sentAt);
          ackAt = grow(ackAt);
        }
        sentAt[i] = sendingAt;
        try {
          await writer.put(`${prefix}${String(i).padStart(WATCH_KEY_DIGITS, '0')}`, value);
        } catch (err) {
          // A write that failed may still be applied: the stream would then hold it, and every
          // later index would look out of order. Stop here rather than measure that.
          writeErrors++;
          problem(`write ${i} failed: ${err instanceof Error ? err.message : String(err)}`);
          writes = i + 1;
          break;
        }
        const now = performance.now();
        ackAt[i] = now;
        writes = i + 1;
        if (now >= measureFrom && now <= measureTo) {
          writesInWindow++;
          if (writeCount === writeLatencies.length) writeLatencies = grow(writeLatencies);
          writeLatencies[writeCount++] = now - sendingAt;
        }
      }
    } finally {
      writer.close();
    }
    const drainStart = performance.now();
    const expected = writes * o.watchers;
    while (delivered < expected && performance.now() - drainStart < o.drainMs && watchEnded < o.watchers) await sleep(20);
    const drainedMs = performance.now() - drainStart;
    const cpu = process.cpuUsage(cpuBefore);
    const sorted = lags.subarray(0, lagCount).sort();
    const sortedAck = ackLags.subarray(0, lagCount).sort();
    const sortedWrites = writeLatencies.subarray(0, writeCount).sort();
    const seconds = o.durationMs / 1000;
    return {
      watchers: o.watchers,
      writesPerSecond: writesInWindow / seconds,
      eventsPerSecond: eventsInWindow / seconds,
      lagP50Ms: percentile(sorted, 0.5),
      lagP99Ms: percentile(sorted, 0.99),
      lagMaxMs: lagCount > 0 ? sorted[lagCount - 1]! : NaN,
      ackLagP50Ms: percentile(sortedAck, 0.5),
      ackLagP99Ms: percentile(sortedAck, 0.99),
      early,
      writeP50Ms: percentile(sortedWrites, 0.5),
      writeP99Ms: percentile(sortedWrites, 0.99),
      expected,
      delivered,
      outOfOrder,
      watchEnded,
      firstProblem,
      writeErrors,
      drainedMs,
      clientCpuUsPerEvent: delivered > 0 ? (cpu.user + cpu.system) / delivered : NaN,
    };
  } finally {
    isClosing = true;
    for (const h of handles) h.close();
  }
}

export interface KeepAliveOptions {
  readonly leases: number;
  readonly clients: number;
  readonly routing: Routing;
  readonly ttlSeconds: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** Grants the leases (spread over the members), renews them in a closed loop, revokes them. */
export async function runKeepAlives(t: CoordinationTarget, o: KeepAliveOptions): Promise<LoadResult> {
  const members = t.memberNames.length;
  const leases = await grantAll(t, o.leases, o.ttlSeconds);
  const aimedAt = Array.from({ length: o.clients }, (_, c) => memberIndexFor(o.routing, c, members, t.leaderIndex));
  const sessions = aimedAt.map((m) => t.keepAliveSession(m));
  const rounds = new Uint32Array(o.clients);
  try {
    return await runClosedLoop({
      concurrency: o.clients,
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      // Client c renews leases c, c + C, c + 2C, ... (mod N) in turn.
      operation: async (client) => {
        const lease = leases[(client + rounds[client]!++ * o.clients) % leases.length]!;
        await sessions[client]!.keepAlive(lease);
        return t.memberNames[aimedAt[client]!]!;
      },
      expectedMember: (client) => t.memberNames[aimedAt[client]!]!,
    });
  } finally {
    for (const s of sessions) s.close();
    await revokeAll(t, leases);
  }
}

export interface LockOptions {
  readonly contenders: number;
  readonly routing: Routing;
  readonly ttlSeconds: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface LockResult {
  readonly contenders: number;
  /** Acquisitions answered in the measured window, per second. */
  readonly handoffsPerSecond: number;
  readonly acquisitions: number;
  /** Acquire latency (request sent → lock held), ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Acquisitions answered while another contender held the lock and had not sent its release. */
  readonly overlaps: number;
  /** Acquisitions whose fencing token was not above the previous one's. */
  readonly fencingViolations: number;
  readonly errors: number;
  readonly firstProblem: string | null;
}

export async function runLockHandoffs(t: CoordinationTarget, o: LockOptions): Promise<LockResult> {
  const members = t.memberNames.length;
  const name = `bench-lock-${process.pid}-${Date.now()}`;
  const leases = await grantAll(t, o.contenders, o.ttlSeconds);
  const sessions: LockSession[] = leases.map((_, c) => t.lockSession(memberIndexFor(o.routing, c, members, t.leaderIndex)));
  let latencies = new Float64Array(1 << 14);
  let acquisitions = 0;
  let measured = 0;
  let overlaps = 0;
  let fencingViolations = 0;
  let errors = 0;
  let firstProblem: string | null = null;
  let holder: number | null = null;
  let lastToken = -1n;
  const start = performance.now();
  const windowStart = start + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;

  const contender = async (c: number): Promise<void> => {
    const session = sessions[c]!;
    while (performance.now() < windowEnd) {
      const sentAt = performance.now();
      let key: string;
      try {
        const grant = await session.lock(name, leases[c]!);
        key = grant.key;
        const doneAt = performance.now();
        acquisitions++;
        if (holder !== null) {
          overlaps++;
          firstProblem ??= `contender ${c} acquired (token ${grant.token}) while contender ${holder} held the lock`;
        }
        holder = c;
        if (grant.token <= lastToken) {
          fencingViolations++;
          firstProblem ??= `fencing token ${grant.token} after ${lastToken}`;
        }
        if (grant.token > lastToken) lastToken = grant.token;
        if (doneAt >= windowStart && doneAt <= windowEnd) {
          if (measured === latencies.length) latencies = grow(latencies);
          latencies[measured++] = doneAt - sentAt;
        }
      } catch (err) {
        errors++;
        firstProblem ??= `lock: ${err instanceof Error ? err.message : String(err)}`;
        await sleep(10);
        continue;
      }
      // Hold it across one poll for I/O (two turns of the check phase): an answer to another
      // contender that arrives meanwhile is seen above as an overlap. Releasing at once, in the
      // same synchronous run, would leave no moment in which an overlap could be observed.
      await nextTurn();
      await nextTurn();
      // From here on the lock may go to the next contender.
      holder = null;
      try {
        await session.unlock(name, key);
      } catch (err) {
        errors++;
        firstProblem ??= `unlock: ${err instanceof Error ? err.message : String(err)}`;
        await sleep(10);
      }
    }
  };
  try {
    await Promise.all(sessions.map((_, c) => contender(c)));
  } finally {
    for (const s of sessions) s.close();
    await revokeAll(t, leases);
  }
  const sorted = latencies.subarray(0, measured).sort();
  return {
    contenders: o.contenders,
    handoffsPerSecond: measured / (o.durationMs / 1000),
    acquisitions,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: measured > 0 ? sorted[measured - 1]! : NaN,
    overlaps,
    fencingViolations,
    errors,
    firstProblem,
  };
}

/** Lease i granted through member i mod 3, a few at a time. */
async function grantAll(t: CoordinationTarget, count: number, ttlSeconds: number): Promise<string[]> {
  const leases: string[] = new Array<string>(count);
  for (let i = 0; i < count; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, count - i) }, async (_, k) => {
      leases[i + k] = await t.grantLease((i + k) % t.memberNames.length, ttlSeconds);
    }));
  }
  return leases;
}

/** Best effort: a lease left behind ends with its TTL anyway, and the cluster is thrown away. */
async function revokeAll(t: CoordinationTarget, leases: readonly string[]): Promise<void> {
  for (let i = 0; i < leases.length; i += 16) {
    await Promise.all(leases.slice(i, i + 16).map((l) => t.revokeLease(t.leaderIndex, l).catch(() => undefined)));
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(a.length * 2);
  bigger.set(a);
  return bigger;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
