// The coordination benchmark's printed output: a line per measure as it finishes, tables of both
// systems side by side, and one machine-greppable `measure=… raftkv=X etcd=Y ratio=Z unit=…` line
// per measure (and routing).
import type { LockResult, WatchFanoutResult } from './coordination.js';
import type { LoadResult } from './load.js';
import { fmt, markdownTable, type SystemName } from './report.js';
import type { Routing } from './workload.js';

export interface SystemResults {
  /** Closed loop: the most events/s the watchers take. */
  watch?: WatchFanoutResult;
  /** At a fixed write rate below saturation: the delivery lag when nothing queues. */
  watchPaced?: WatchFanoutResult;
  readonly keepAlive: Map<Routing, LoadResult>;
  readonly lock: Map<Routing, LockResult>;
  /**
   * CPU the three servers used per operation (µs, summed over the members; warm-up and tail
   * included), by run: `watch`, `watch-paced` (per delivered event), `keepalive/<routing>`,
   * `lock/<routing>` (per acquisition).
   */
  readonly serverCpuUs: Map<string, number>;
}

export class CoordinationResults {
  private readonly bySystem = new Map<SystemName, SystemResults>();

  of(system: SystemName): SystemResults {
    let r = this.bySystem.get(system);
    if (r === undefined) {
      r = { keepAlive: new Map(), lock: new Map(), serverCpuUs: new Map() };
      this.bySystem.set(system, r);
    }
    return r;
  }

  get(system: SystemName): SystemResults | undefined {
    return this.bySystem.get(system);
  }

  /** Everything that says a run measured nothing or saw a correctness problem; empty when clean. */
  problems(): string[] {
    const out: string[] = [];
    for (const [system, r] of this.bySystem) {
      for (const [run, w] of [['closed loop', r.watch], ['paced', r.watchPaced]] as const) {
        if (w === undefined) continue;
        if (w.eventsPerSecond === 0) out.push(`${system} watch (${run}): no event in the measured window`);
        if (w.outOfOrder > 0 || w.delivered !== w.expected || w.watchEnded > 0 || w.writeErrors > 0) {
          out.push(`${system} watch (${run}): ${w.delivered} of ${w.expected} events delivered, ${w.outOfOrder} out of order, ${w.watchEnded} watches ended, ${w.writeErrors} write errors (${w.firstProblem ?? 'no detail'})`);
        }
      }
      for (const [routing, k] of r.keepAlive) {
        if (k.ops === 0) out.push(`${system} keep-alive ${routing}: none completed (${k.firstError ?? 'no error seen'})`);
      }
      for (const [routing, l] of r.lock) {
        if (l.acquisitions === 0) out.push(`${system} lock ${routing}: no acquisition (${l.firstProblem ?? 'no error seen'})`);
        if (l.overlaps > 0 || l.fencingViolations > 0) out.push(`${system} lock ${routing}: ${l.overlaps} overlaps, ${l.fencingViolations} fencing violations (${l.firstProblem ?? ''})`);
      }
    }
    return out;
  }
}

export function formatWatchLine(system: SystemName, run: string, w: WatchFanoutResult, serverUs: number): string {
  const trouble = w.firstProblem !== null ? `  PROBLEM: ${w.firstProblem}` : '';
  return `${system.padEnd(6)} watch ${run.padEnd(11)} W=${w.watchers}  ${fmt(w.eventsPerSecond, 0)} events/s from ${fmt(w.writesPerSecond, 0)} writes/s (write p50 ${fmt(w.writeP50Ms, 2)} ms)`
    + `  lag from send p50 ${fmt(w.lagP50Ms, 2)}  p99 ${fmt(w.lagP99Ms, 2)}  max ${fmt(w.lagMaxMs, 1)} ms; from ack p50 ${fmt(w.ackLagP50Ms, 2)}  p99 ${fmt(w.ackLagP99Ms, 2)} ms (${w.early} before the ack)`
    + `  delivered ${w.delivered}/${w.expected} after ${fmt(w.drainedMs / 1000, 1)} s drain; CPU µs/event: client ${fmt(w.clientCpuUsPerEvent, 1)}, servers ${fmt(serverUs, 1)}${trouble}`;
}

export function formatKeepAliveLine(system: SystemName, routing: Routing, leases: number, k: LoadResult, serverUs: number): string {
  const errors = k.errors > 0 ? `  errors=${k.errors} (first: ${k.firstError ?? '?'})` : '';
  return `${system.padEnd(6)} keepalive ${routing.padEnd(6)} c=${k.concurrency} leases=${leases}  ${fmt(k.opsPerSecond, 0)} keepalives/s`
    + `  p50 ${fmt(k.p50Ms, 2)}  p99 ${fmt(k.p99Ms, 2)}  max ${fmt(k.maxMs, 1)} ms  CPU µs/op: client ${fmt(k.clientCpuUsPerOp, 0)}, servers ${fmt(serverUs, 0)}${errors}`;
}

export function formatLockLine(system: SystemName, routing: Routing, l: LockResult, serverUs: number): string {
  const trouble = l.firstProblem !== null ? `  (first problem: ${l.firstProblem})` : '';
  return `${system.padEnd(6)} lock      ${routing.padEnd(6)} K=${l.contenders}  ${fmt(l.handoffsPerSecond, 0)} handoffs/s  acquire p50 ${fmt(l.p50Ms, 2)}  p99 ${fmt(l.p99Ms, 2)}  max ${fmt(l.maxMs, 1)} ms`
    + `  servers ${fmt(serverUs, 0)} µs CPU/handoff  overlaps=${l.overlaps} fencing_violations=${l.fencingViolations} errors=${l.errors}${trouble}`;
}

const ratioOf = (a: number | undefined, b: number | undefined): number => (a === undefined || b === undefined || b === 0 ? NaN : a / b);

export interface ReportShape {
  readonly watchers: number;
  readonly leases: number;
  readonly clients: number;
  readonly contenders: number;
  readonly routings: readonly Routing[];
  /** Writes/s of the paced watch run; 0 when it did not run. */
  readonly watchRate: number;
}

/** Both systems side by side: one row per measure (and routing). */
export function formatCoordinationTable(results: CoordinationResults, shape: ReportShape): string {
  const a = results.get('raftkv');
  const b = results.get('etcd');
  const rows: string[][] = [];
  const row = (measure: string, unit: string, x: number | undefined, y: number | undefined, p50: [number | undefined, number | undefined], p99: [number | undefined, number | undefined]): void => {
    rows.push([measure, unit, fmt(x ?? NaN, 0), fmt(p50[0] ?? NaN, 2), fmt(p99[0] ?? NaN, 2), fmt(y ?? NaN, 0), fmt(p50[1] ?? NaN, 2), fmt(p99[1] ?? NaN, 2), fmt(ratioOf(x, y), 2)]);
  };
  if (a?.watch !== undefined || b?.watch !== undefined) {
    row(`watch fan-out, ${shape.watchers} watchers, closed loop`, 'events/s (lag from send, ms)', a?.watch?.eventsPerSecond, b?.watch?.eventsPerSecond, [a?.watch?.lagP50Ms, b?.watch?.lagP50Ms], [a?.watch?.lagP99Ms, b?.watch?.lagP99Ms]);
  }
  if (a?.watchPaced !== undefined || b?.watchPaced !== undefined) {
    row(`watch fan-out, ${shape.watchers} watchers, ${shape.watchRate} writes/s`, 'events/s (lag from send, ms)', a?.watchPaced?.eventsPerSecond, b?.watchPaced?.eventsPerSecond, [a?.watchPaced?.lagP50Ms, b?.watchPaced?.lagP50Ms], [a?.watchPaced?.lagP99Ms, b?.watchPaced?.lagP99Ms]);
  }
  for (const routing of shape.routings) {
    const x = a?.keepAlive.get(routing);
    const y = b?.keepAlive.get(routing);
    if (x !== undefined || y !== undefined) row(`lease keep-alive, ${routing}, ${shape.clients} clients, ${shape.leases} leases`, 'keepalives/s', x?.opsPerSecond, y?.opsPerSecond, [x?.p50Ms, y?.p50Ms], [x?.p99Ms, y?.p99Ms]);
  }
  for (const routing of shape.routings) {
    const x = a?.lock.get(routing);
    const y = b?.lock.get(routing);
    if (x !== undefined || y !== undefined) row(`lock handoff, ${routing}, ${shape.contenders} contenders`, 'handoffs/s (acquire ms)', x?.handoffsPerSecond, y?.handoffsPerSecond, [x?.p50Ms, y?.p50Ms], [x?.p99Ms, y?.p99Ms]);
  }
  return markdownTable(['measure', 'unit', 'raftkv', 'p50', 'p99', 'etcd', 'p50', 'p99', 'ratio'], rows);
}

/** `measure=watch-fanout watchers=1000 raftkv=X etcd=Y ratio=Z unit=events/s …` and the like. */
export function formatCoordinationLines(results: CoordinationResults, shape: ReportShape): string[] {
  const a = results.get('raftkv');
  const b = results.get('etcd');
  const lines: string[] = [];
  const pair = (name: string, digits: number, x: number | undefined, y: number | undefined): string => `raftkv_${name}=${fmt(x ?? NaN, digits)} etcd_${name}=${fmt(y ?? NaN, digits)}`;
  if (a?.watch !== undefined || b?.watch !== undefined) {
    const x = a?.watch;
    const y = b?.watch;
    lines.push(`measure=watch-fanout watchers=${shape.watchers} raftkv=${fmt(x?.eventsPerSecond ?? NaN, 0)} etcd=${fmt(y?.eventsPerSecond ?? NaN, 0)} ratio=${fmt(ratioOf(x?.eventsPerSecond, y?.eventsPerSecond), 2)} unit=events/s`
      + ` ${pair('writes', 0, x?.writesPerSecond, y?.writesPerSecond)} ${pair('lag_p50', 2, x?.lagP50Ms, y?.lagP50Ms)} ${pair('lag_p99', 2, x?.lagP99Ms, y?.lagP99Ms)}`
      + ` ${pair('server_us', 1, a?.serverCpuUs.get('watch'), b?.serverCpuUs.get('watch'))} ${pair('client_us', 1, x?.clientCpuUsPerEvent, y?.clientCpuUsPerEvent)}`
      + ` ${pair('missing', 0, x === undefined ? undefined : x.expected - x.delivered, y === undefined ? undefined : y.expected - y.delivered)} ${pair('out_of_order', 0, x?.outOfOrder, y?.outOfOrder)}`);
  }
  if (a?.watchPaced !== undefined || b?.watchPaced !== undefined) {
    const x = a?.watchPaced;
    const y = b?.watchPaced;
    lines.push(`measure=watch-lag watchers=${shape.watchers} rate=${shape.watchRate} raftkv=${fmt(x?.lagP50Ms ?? NaN, 2)} etcd=${fmt(y?.lagP50Ms ?? NaN, 2)} ratio=${fmt(ratioOf(x?.lagP50Ms, y?.lagP50Ms), 2)} unit=ms(p50,from-send)`
      + ` ${pair('p99', 2, x?.lagP99Ms, y?.lagP99Ms)} ${pair('ack_p50', 2, x?.ackLagP50Ms, y?.ackLagP50Ms)} ${pair('ack_p99', 2, x?.ackLagP99Ms, y?.ackLagP99Ms)} ${pair('early', 0, x?.early, y?.early)}`
      + ` ${pair('write_p50', 2, x?.writeP50Ms, y?.writeP50Ms)} ${pair('events', 0, x?.eventsPerSecond, y?.eventsPerSecond)} ${pair('server_us', 1, a?.serverCpuUs.get('watch-paced'), b?.serverCpuUs.get('watch-paced'))}`
      + ` ${pair('missing', 0, x === undefined ? undefined : x.expected - x.delivered, y === undefined ? undefined : y.expected - y.delivered)} ${pair('out_of_order', 0, x?.outOfOrder, y?.outOfOrder)}`);
  }
  for (const routing of shape.routings) {
    const x = a?.keepAlive.get(routing);
    const y = b?.keepAlive.get(routing);
    if (x === undefined && y === undefined) continue;
    lines.push(`measure=lease-keepalive routing=${routing} clients=${shape.clients} leases=${shape.leases} raftkv=${fmt(x?.opsPerSecond ?? NaN, 0)} etcd=${fmt(y?.opsPerSecond ?? NaN, 0)} ratio=${fmt(ratioOf(x?.opsPerSecond, y?.opsPerSecond), 2)} unit=keepalives/s`
      + ` ${pair('p50', 2, x?.p50Ms, y?.p50Ms)} ${pair('p99', 2, x?.p99Ms, y?.p99Ms)} ${pair('errors', 0, x?.errors, y?.errors)}`
      + ` ${pair('server_us', 0, a?.serverCpuUs.get(`keepalive/${routing}`), b?.serverCpuUs.get(`keepalive/${routing}`))} ${pair('client_us', 0, x?.clientCpuUsPerOp, y?.clientCpuUsPerOp)}`);
  }
  for (const routing of shape.routings) {
    const x = a?.lock.get(routing);
    const y = b?.lock.get(routing);
    if (x === undefined && y === undefined) continue;
    lines.push(`measure=lock-handoff routing=${routing} contenders=${shape.contenders} raftkv=${fmt(x?.handoffsPerSecond ?? NaN, 0)} etcd=${fmt(y?.handoffsPerSecond ?? NaN, 0)} ratio=${fmt(ratioOf(x?.handoffsPerSecond, y?.handoffsPerSecond), 2)} unit=handoffs/s`
      + ` ${pair('p50', 2, x?.p50Ms, y?.p50Ms)} ${pair('p99', 2, x?.p99Ms, y?.p99Ms)} ${pair('overlaps', 0, x?.overlaps, y?.overlaps)} ${pair('fencing_violations', 0, x?.fencingViolations, y?.fencingViolations)} ${pair('errors', 0, x?.errors, y?.errors)}`
      + ` ${pair('server_us', 0, a?.serverCpuUs.get(`lock/${routing}`), b?.serverCpuUs.get(`lock/${routing}`))}`);
  }
  return lines;
}
