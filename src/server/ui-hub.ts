// The live dashboard's data (GET /v1/ui/events): while at least one page watches, this node asks
// every member for its state over the peer channel (authenticated like all peer traffic, so no
// token is needed between members) a few times a second, and sends the whole cluster as one
// Server-Sent Event to every page. One gathering serves every page: a page never polls the
// members itself. Peers' answers are checked like any input, each ask is bounded in time, a
// gathering never overlaps the last, a page that does not read is skipped (and cut once it has
// taken nothing for 10 s), and the number of pages is capped.
import type { ServerResponse } from 'node:http';
import { ApiError } from './errors.js';
import { allowParams, expectMethod, type Reply } from './http-util.js';
import type { ParsedRequest } from './api-types.js';
import type { UiClusterView, UiLeaderChange, UiMember, UiNodeState } from './ui-types.js';

export const UI_EVENTS_PATH = '/v1/ui/events';
export const UI_NODE_PEER_PATH = '/v1/internal/ui-node';

export interface UiMemberAddress {
  readonly id: string;
  readonly clientUrl: string | null;
  readonly peerAddr: string | null;
}

export interface UiHubOptions {
  readonly self: string;
  readonly local: () => UiNodeState;
  readonly members: () => readonly UiMemberAddress[];
  /** Asks a member for its state (the peer channel); rejects on timeout or error. */
  readonly askPeer: (id: string, timeoutMs: number) => Promise<unknown>;
  readonly clusterId: () => string | null;
  /** @default 250 */
  readonly intervalMs?: number;
  /** @default 600 */
  readonly peerTimeoutMs?: number;
  /** @default 32 — pages watching this node at once; more get 503 */
  readonly maxClients?: number;
}

/** A page that has taken no view for this long is cut: it holds one of the few slots. */
const STALLED_MS = 10_000;
const MAX_LEADER_CHANGES = 64;

interface Heard {
  state: UiNodeState | null;
  error: string | null;
  atMs: number | null;
}

export class UiHub {
  /** Each page, and since when it has not taken what was written (null: it reads). */
  private readonly clients = new Map<ServerResponse, number | null>();
  private readonly heard = new Map<string, Heard>();
  private readonly leaderChanges: UiLeaderChange[] = [];
  private timer: NodeJS.Timeout | null = null;
  private isGathering = false;
  private lastApplied: { atMs: number; index: number } | null = null;
  private appliedPerSecond = 0;
  private isClosed = false;
  private readonly o: Required<Omit<UiHubOptions, 'self' | 'local' | 'members' | 'askPeer' | 'clusterId'>> & UiHubOptions;

  constructor(options: UiHubOptions) {
    this.o = { intervalMs: 250, peerTimeoutMs: 600, maxClients: 32, ...options };
  }

  route(r: ParsedRequest): Promise<Reply> | null {
    if (r.path !== UI_EVENTS_PATH) return null;
    expectMethod(r.method, ['GET']);
    allowParams(r.query, []);
    if (this.isClosed) throw new ApiError('STARTING', 'this node is stopping');
    if (this.clients.size >= this.o.maxClients) throw new ApiError('OVERLOADED', `this node serves ${this.o.maxClients} dashboards already; open the dashboard of another member`);
    return Promise.resolve({ status: 200, stream: (res, headers) => this.subscribe(res, headers) });
  }

  close(): void {
    this.isClosed = true;
    this.stopTimer();
    for (const res of [...this.clients.keys()]) res.end();
    this.clients.clear();
  }

  private subscribe(res: ServerResponse, headers: Readonly<Record<string, string>>): void {
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'close' });
    this.clients.set(res, null);
    res.once('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stopTimer();
    });
    res.write('retry: 1000\n\n');
    // What is known now, at once; the next gathering follows within an interval.
    if (this.heard.size > 0) this.write(res, `data: ${JSON.stringify(this.view())}\n\n`);
    if (this.timer === null) {
      this.timer = setInterval(() => void this.tick(), this.o.intervalMs);
      this.timer.unref();
      void this.tick();
    }
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    // A gathering slower than the interval (a peer timing out) is not stacked on by the next.
    if (this.isGathering || this.isClosed) return;
    this.isGathering = true;
    try {
      await this.gatherOnce();
      if (this.clients.size === 0) return;
      const text = `data: ${JSON.stringify(this.view())}\n\n`;
      for (const res of [...this.clients.keys()]) this.write(res, text);
    } finally {
      this.isGathering = false;
    }
  }

  private write(res: ServerResponse, text: string): void {
    if (res.destroyed) return;
    // A page that has not taken the last view gets none until it does (views replace each other),
    // and one that takes nothing for STALLED_MS is cut.
    if (res.writableNeedDrain) {
      const since = this.clients.get(res) ?? Date.now();
      if (Date.now() - since >= STALLED_MS) res.destroy();
      else this.clients.set(res, since);
      return;
    }
    this.clients.set(res, null);
    res.write(text);
  }

  private async gatherOnce(): Promise<void> {
    const now = Date.now();
    const members = this.o.members();
    const known = new Set(members.map((m) => m.id));
    for (const id of [...this.heard.keys()]) if (!known.has(id)) this.heard.delete(id);
    await Promise.all(
      members.map(async (m) => {
        const h = this.heard.get(m.id) ?? { state: null, error: null, atMs: null };
        this.heard.set(m.id, h);
        try {
          h.state = m.id === this.o.self ? this.o.local() : parseUiNodeState(await this.o.askPeer(m.id, this.o.peerTimeoutMs));
          h.error = null;
          h.atMs = Date.now();
        } catch (err) {
          // The last state heard stays, aged; the page greys it out.
          h.error = err instanceof Error ? err.message.slice(0, 200) : 'no answer';
        }
      }),
    );
    this.noteLeader(now);
  }

  private noteLeader(now: number): void {
    const leader = this.currentLeader();
    this.noteThroughput(now, leader);
    const last = this.leaderChanges[this.leaderChanges.length - 1];
    // Before any leader was seen there is no change to show (a node just started, or just asked).
    if (last === undefined && leader === null) return;
    if (last === undefined || last.leader !== (leader?.id ?? null) || (leader !== null && last.term !== leader.term)) {
      this.leaderChanges.push({ atMs: now, leader: leader?.id ?? null, term: leader?.term ?? last?.term ?? 0 });
      if (this.leaderChanges.length > MAX_LEADER_CHANGES) this.leaderChanges.shift();
    }
  }

  private noteThroughput(now: number, leader: UiNodeState | null): void {
    if (leader !== null) {
      const prev = this.lastApplied;
      if (prev !== null && now - prev.atMs >= 900) {
        this.appliedPerSecond = Math.max(0, ((leader.appliedIndex - prev.index) * 1000) / (now - prev.atMs));
        this.lastApplied = { atMs: now, index: leader.appliedIndex };
      } else if (prev === null) {
        this.lastApplied = { atMs: now, index: leader.appliedIndex };
      }
    }
  }

  /** The leader of the highest term among states heard just now (a deposed one may not know yet). */
  private currentLeader(): UiNodeState | null {
    let best: UiNodeState | null = null;
    for (const h of this.heard.values()) {
      const s = h.state;
      if (s !== null && h.error === null && s.role === 'leader' && (best === null || s.term > best.term)) best = s;
    }
    return best;
  }

  view(): UiClusterView {
    const now = Date.now();
    const leader = this.currentLeader();
    const members: UiMember[] = this.o.members().map((m) => {
      const h = this.heard.get(m.id);
      return { id: m.id, clientUrl: m.clientUrl, peerAddr: m.peerAddr, state: h?.state ?? null, error: h?.error ?? null, ageMs: h?.atMs == null ? null : now - h.atMs };
    });
    let term = 0;
    const alarms = new Set<string>();
    for (const h of this.heard.values()) {
      if (h.state !== null) term = Math.max(term, h.state.term);
      for (const a of h.state?.alarms ?? []) alarms.add(a);
    }
    return {
      atMs: now,
      via: this.o.self,
      clusterId: this.o.clusterId(),
      leader: leader?.id ?? null,
      term,
      members,
      leaderChanges: [...this.leaderChanges],
      appliedPerSecond: Math.round(this.appliedPerSecond),
      alarms: [...alarms],
    };
  }
}

const ROLES = new Set(['follower', 'pre-candidate', 'candidate', 'leader']);
const MAX_LIST = 64;

/** A peer's answer, checked field by field: anything malformed is an error, never shown as is. */
export function parseUiNodeState(x: unknown): UiNodeState {
  const o = obj(x, 'state');
  const config = obj(o['config'], 'config');
  const latency = o['latencyMs'];
  return {
    id: str(o['id'], 'id'),
    role: ROLES.has(o['role'] as string) ? (o['role'] as UiNodeState['role']) : bad('role'),
    term: nat(o['term'], 'term'),
    votedFor: o['votedFor'] === null ? null : str(o['votedFor'], 'votedFor'),
    leader: o['leader'] === null ? null : str(o['leader'], 'leader'),
    commitIndex: nat(o['commitIndex'], 'commitIndex'),
    appliedIndex: nat(o['appliedIndex'], 'appliedIndex'),
    lastIndex: nat(o['lastIndex'], 'lastIndex'),
    snapshotIndex: nat(o['snapshotIndex'], 'snapshotIndex'),
    log: list(o['log'], 'log').map((e) => {
      const pair = list(e, 'log entry');
      if (pair.length !== 2) bad('log entry');
      return [nat(pair[0], 'log index'), nat(pair[1], 'log term')] as const;
    }),
    config: { voters: list(config['voters'], 'voters').map((v) => str(v, 'voter')), votersOutgoing: list(config['votersOutgoing'], 'votersOutgoing').map((v) => str(v, 'voter')), learners: list(config['learners'], 'learners').map((v) => str(v, 'learner')) },
    configIndex: nat(o['configIndex'], 'configIndex'),
    isChangePending: o['isChangePending'] === true,
    progress: list(o['progress'], 'progress').map((p) => {
      const q = obj(p, 'progress');
      return { id: str(q['id'], 'progress id'), matchIndex: nat(q['matchIndex'], 'matchIndex'), nextIndex: nat(q['nextIndex'], 'nextIndex'), state: str(q['state'], 'progress state') };
    }),
    alarms: list(o['alarms'], 'alarms').map((a) => str(a, 'alarm')),
    requestsPerSecond: num(o['requestsPerSecond'], 'requestsPerSecond'),
    writesPerSecond: num(o['writesPerSecond'], 'writesPerSecond'),
    latencyMs: latency === null ? null : (() => {
      const l = obj(latency, 'latencyMs');
      return { p50: num(l['p50'], 'p50'), p99: num(l['p99'], 'p99') };
    })(),
    uptimeSeconds: num(o['uptimeSeconds'], 'uptimeSeconds'),
  };
}

function bad(what: string): never {
  throw new Error(`a member answered a malformed ${what}`);
}
function obj(x: unknown, what: string): Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : bad(what);
}
function list(x: unknown, what: string): unknown[] {
  return Array.isArray(x) && x.length <= MAX_LIST ? x : bad(what);
}
function str(x: unknown, what: string): string {
  return typeof x === 'string' && x.length <= 256 ? x : bad(what);
}
function nat(x: unknown, what: string): number {
  return Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : bad(what);
}
function num(x: unknown, what: string): number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : bad(what);
}

/** Requests this node answered recently: rates and latency quantiles for the dashboard. */
export class RequestStats {
  private readonly times = new Float64Array(4096);
  private readonly latencies = new Float64Array(4096);
  private readonly writes = new Uint8Array(4096);
  private next = 0;
  private count = 0;

  record(atMs: number, latencyMs: number, isWrite: boolean): void {
    const i = this.next;
    this.times[i] = atMs;
    this.latencies[i] = latencyMs;
    this.writes[i] = isWrite ? 1 : 0;
    this.next = (i + 1) % this.times.length;
    this.count = Math.min(this.count + 1, this.times.length);
  }

  /** Over the last `windowMs`: requests and writes per second, and p50/p99 latency of the writes (or all, if none). */
  summary(nowMs: number, windowMs = 2000): { requestsPerSecond: number; writesPerSecond: number; latencyMs: { p50: number; p99: number } | null } {
    const all: number[] = [];
    const writes: number[] = [];
    let oldest = nowMs;
    for (let k = 0; k < this.count; k++) {
      const i = (this.next - 1 - k + this.times.length) % this.times.length;
      if (nowMs - this.times[i]! > windowMs) break;
      oldest = this.times[i]!;
      all.push(this.latencies[i]!);
      if (this.writes[i] === 1) writes.push(this.latencies[i]!);
    }
    // Under heavy load the ring holds less than the window: rates over the span it does hold.
    const spanMs = all.length === this.times.length ? Math.max(1, nowMs - oldest) : windowMs;
    const pick = writes.length > 0 ? writes : all;
    pick.sort((a, b) => a - b);
    const q = (p: number): number => Math.round(pick[Math.min(pick.length - 1, Math.floor(p * pick.length))]! * 100) / 100;
    return {
      requestsPerSecond: Math.round((all.length * 1000) / spanMs),
      writesPerSecond: Math.round((writes.length * 1000) / spanMs),
      latencyMs: pick.length === 0 ? null : { p50: q(0.5), p99: q(0.99) },
    };
  }
}
