// A hand-driven harness for the consensus core's tests (paper Figure 2, §5–§8): nodes whose
// Readies the shipping runtime carries out (src/node/runtime.ts) over a tiny synchronous disk,
// checking every message as it leaves against what that disk holds, and a Network that delivers
// those messages one by one, drops them across partitions, and crashes nodes back to what they
// persisted. Nothing here reads a clock: time is ticks, randomness is seeded.
import { Runtime, type StoragePort } from '../../src/node/runtime.js';
import { Raft, bootstrapState, encodeConfiguration } from '../../src/raft/index.js';
import { Rng } from '../../src/sim/random.js';
import type {
  Configuration,
  Entry,
  HardState,
  InitialState,
  Message,
  NodeId,
  RaftOptions,
  ReadState,
  Ready,
  Snapshot,
  SoftState,
  StateMachine,
} from '../../src/raft/index.js';

/** A seeded source of floats in [0, 1): the simulator's generator, as a function. */
export function seededRandom(seed: number): () => number {
  return new Rng(seed).asFunction();
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export type NodeOptions = Partial<Omit<RaftOptions, 'id' | 'random'>> & {
  /** Mixed with the node's id so every node of a cluster draws different timeouts. */
  seed?: number;
  /** Start from this state instead of the bootstrap state. */
  state?: InitialState;
};

/** Figure 2 exactly: no PreVote, no CheckQuorum lease. */
export const PAPER: NodeOptions = { preVote: false, checkQuorum: false };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const bytes = (s: string): Uint8Array => encoder.encode(s);
export const text = (b: Uint8Array): string => decoder.decode(b);

export function configOf(voters: readonly NodeId[]): Configuration {
  return { voters: [...voters], votersOutgoing: [], learners: [] };
}

export function entry(index: number, term: number, data = `${index}@${term}`): Entry {
  return { index, term, type: 'normal', data: bytes(data) };
}

/**
 * A log written as the terms of its entries from index 1, as the paper's figures draw them.
 * Index 1 is always the founding configuration entry of term 1 (what bootstrapState writes).
 */
export function logOf(voters: readonly NodeId[], terms: readonly number[]): Entry[] {
  if (terms[0] !== 1) throw new Error('index 1 is the founding config entry of term 1');
  const log: Entry[] = [{ index: 1, term: 1, type: 'config', data: encodeConfiguration(configOf(voters)) }];
  for (let i = 1; i < terms.length; i++) log.push(entry(i + 1, terms[i]!));
  return log;
}

export interface StateSpec {
  terms: readonly number[];
  currentTerm?: number;
  votedFor?: NodeId | null;
  commitIndex?: number;
}

/** A recovered state: the given log, term and vote; the state machine has applied the commit. */
export function stateOf(voters: readonly NodeId[], spec: StateSpec): InitialState {
  const entries = logOf(voters, spec.terms);
  const commitIndex = spec.commitIndex ?? 1;
  return {
    hardState: {
      currentTerm: spec.currentTerm ?? Math.max(...spec.terms),
      votedFor: spec.votedFor ?? null,
      commitIndex,
    },
    snapshot: null,
    entries,
    applied: commitIndex,
  };
}

/**
 * The durable part of a node: only what a handled Ready persisted survives a crash. A
 * synchronous disk: every write is durable once queued, so a Ready is durable as soon as the
 * runtime has queued it (the core's tests look at Readies; the simulator covers the windows
 * while a real sync is in flight).
 */
export class DurableStore {
  hardState: HardState;
  snapshot: Snapshot | null = null;
  entries: Entry[];

  constructor(initial: InitialState) {
    this.hardState = initial.hardState;
    this.entries = [...initial.entries];
  }

  get lastIndex(): number {
    const last = this.entries[this.entries.length - 1];
    return last !== undefined ? last.index : (this.snapshot?.meta.index ?? 0);
  }

  termAt(index: number): number | undefined {
    if (this.snapshot !== null && index === this.snapshot.meta.index) return this.snapshot.meta.term;
    return this.entries.find((e) => e.index === index)?.term;
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0]!.index;
    this.entries = this.entries.filter((e) => e.index < from).concat(entries);
  }

  /** storage.installSnapshot: the whole log is discarded and restarts after the snapshot. */
  install(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
  }

  /** storage.saveSnapshot: a snapshot taken locally; the log stays until compact(). */
  save(snapshot: Snapshot): void {
    this.snapshot = snapshot;
  }

  /** storage.compact: the log up to `index`, which the snapshot covers, goes. */
  compact(index: number): void {
    this.entries = this.entries.filter((e) => e.index > index);
  }

  /** The runtime's storage port over this store: every operation completes at once. */
  port(): StoragePort {
    return {
      append: (entries) => this.append(entries),
      setHardState: (state) => (this.hardState = state),
      sync: (done) => done(null),
      installSnapshot: (snapshot, done) => {
        this.install(snapshot);
        done(null);
      },
      saveSnapshot: (snapshot, done) => {
        this.save(snapshot);
        done(null);
      },
      compact: (index, done) => {
        this.compact(index);
        done(null);
      },
    };
  }

  recover(): InitialState {
    return {
      hardState: this.hardState,
      snapshot: this.snapshot?.meta ?? null,
      entries: [...this.entries],
      // The state machine is volatile here: it restarts from the snapshot and re-applies.
      applied: this.snapshot?.meta.index ?? 0,
    };
  }
}

/** Everything the node's handled Readies emitted, in order. */
export interface Output {
  softState: SoftState | null;
  hardState: HardState | null;
  snapshot: Snapshot | null;
  entries: Entry[];
  messages: Message[];
  committed: Entry[];
  readStates: ReadState[];
}

function emptyOutput(): Output {
  return { softState: null, hardState: null, snapshot: null, entries: [], messages: [], committed: [], readStates: [] };
}

export class TestNode implements StateMachine<void> {
  readonly id: NodeId;
  readonly store: DurableStore;
  /** Every entry applied since the last restart, in the order applied. */
  applied: Entry[] = [];
  /** The replicated state: data of applied normal, non-empty entries (no-ops and configs skipped). */
  machine: string[] = [];
  appliedIndex: number;
  readStates: ReadState[] = [];
  private runtime: Runtime<void>;
  private readonly options: NodeOptions;
  private restarts = 0;
  /** What the Readies being carried out emitted. */
  private out: Output = emptyOutput();
  private readies = 0;

  constructor(id: NodeId, voters: readonly NodeId[], options: NodeOptions = {}) {
    this.id = id;
    this.options = options;
    const all = voters.includes(id) ? voters : [...voters, id];
    const initial = options.state ?? bootstrapState(configOf(all));
    this.store = new DurableStore(initial);
    this.appliedIndex = initial.applied;
    this.runtime = this.build(initial);
  }

  get raft(): Raft {
    return this.runtime.core;
  }

  private build(initial: InitialState): Runtime<void> {
    const { seed = 1, state: _state, ...rest } = this.options;
    const random = seededRandom(hashString(`${this.id}/${seed}/${this.restarts}`));
    const core = new Raft({ ...rest, id: this.id, random, restarted: this.restarts > 0 }, initial);
    return new Runtime<void>({
      core,
      storage: this.store.port(),
      transport: { send: () => undefined },
      stateMachine: this,
      clock: NO_CLOCK,
      applied: initial.applied,
      latestSnapshot: this.store.snapshot,
      // Snapshots only when a test takes one, and then of everything applied.
      snapshotEntries: Number.POSITIVE_INFINITY,
      snapshotCatchUpEntries: 0,
      hooks: {
        readyTaken: (rd: Ready) => {
          if (++this.readies > 1000) throw new Error(`${this.id}: hasReady() never settles`);
          this.out.softState = rd.softState ?? this.out.softState;
          this.out.hardState = rd.hardState ?? this.out.hardState;
          this.out.snapshot = rd.snapshot ?? this.out.snapshot;
          this.out.entries.push(...rd.entries);
          this.out.committed.push(...rd.committedEntries);
        },
        sent: (m: Message, isBeforeSync: boolean) => {
          this.checkPersistedBeforeSend(m, isBeforeSync);
          this.out.messages.push(m);
        },
        restored: (snapshot: Snapshot) => {
          this.appliedIndex = snapshot.meta.index;
        },
        readsConfirmed: (readStates: readonly ReadState[]) => {
          this.out.readStates.push(...readStates);
          this.readStates.push(...readStates);
        },
      },
    });
  }

  /** A Ready the test took itself, carried out by the runtime. */
  handle(rd: Ready): Output {
    this.out = emptyOutput();
    this.readies = 0;
    this.runtime.carryOut(rd);
    return this.out;
  }

  /** The runtime carries out Readies until there are none; the union of their outputs. Bounded. */
  drain(): Output {
    this.out = emptyOutput();
    this.readies = 0;
    this.runtime.pump();
    return this.out;
  }

  /** Engine style: one input, then every output it caused. */
  stepOut(m: Message): Output {
    this.raft.step(m);
    return this.drain();
  }

  /**
   * Loses everything volatile, including a Ready taken but not yet handled (its messages were
   * never sent: nothing leaves a Ready the runtime was not given), and rebuilds from the store.
   */
  crash(): void {
    this.restarts++;
    const initial = this.store.recover();
    this.applied = [];
    this.readStates = [];
    this.machine = this.store.snapshot !== null ? decodeMachine(this.store.snapshot.data) : [];
    this.appliedIndex = initial.applied;
    this.runtime = this.build(initial);
  }

  /** The runtime saves a snapshot of the state machine at its applied index, and compacts. */
  takeSnapshot(): Snapshot {
    this.runtime.takeSnapshot((err) => {
      if (err !== null) throw err;
    });
    return this.store.snapshot!;
  }

  // ---- the state machine the runtime applies to -------------------------------------------------

  apply(e: Entry): void {
    // §5.3 / Figure 2: lastApplied advances one entry at a time, in log order.
    if (e.index !== this.appliedIndex + 1) {
      throw new Error(`${this.id}: applied index ${e.index} after ${this.appliedIndex}`);
    }
    if (this.store.termAt(e.index) !== e.term) {
      throw new Error(`${this.id}: applied ${e.index}@${e.term}, which is not on stable storage`);
    }
    this.appliedIndex = e.index;
    this.applied.push(e);
    if (e.type === 'normal' && e.data.length > 0) this.machine.push(text(e.data));
  }

  snapshot(): Uint8Array {
    return encodeMachine(this.machine);
  }

  restore(data: Uint8Array): void {
    this.machine = decodeMachine(data);
  }

  /**
   * Figure 2: a message may leave only once the state it depends on is durable; the Ready
   * contract's exception (raft/types.ts): a leader's AppendEntries and the like, and pre-votes,
   * may leave before the sync, but never in a term the store does not hold.
   */
  private checkPersistedBeforeSend(m: Message, isBeforeSync: boolean): void {
    const hs = this.store.hardState;
    const fail = (why: string): never => {
      throw new Error(`${this.id}: sent ${m.type} to ${m.to} but ${why}`);
    };
    const isPreVote = (m.type === 'RequestVote' || m.type === 'RequestVoteResponse') && m.preVote;
    if (!isPreVote && m.term > hs.currentTerm) fail(`stored currentTerm is ${hs.currentTerm} < ${m.term}`);
    if (isBeforeSync) {
      const mayRace = isPreVote || m.type === 'AppendEntries' || m.type === 'InstallSnapshot' || m.type === 'TimeoutNow' || m.type === 'Removed';
      if (!mayRace) fail('its Ready was not yet durable');
      return;
    }
    if (m.type === 'RequestVote' && !m.preVote && hs.votedFor !== this.id) fail(`stored votedFor is ${hs.votedFor}`);
    if (m.type === 'RequestVoteResponse' && !m.preVote && m.voteGranted && (hs.votedFor !== m.to || hs.currentTerm !== m.term)) {
      fail(`stored vote is ${hs.votedFor}@${hs.currentTerm}`);
    }
    if (m.type === 'AppendEntriesResponse' && m.success && m.matchIndex > this.store.lastIndex) {
      fail(`acknowledged ${m.matchIndex} with only ${this.store.lastIndex} stored`);
    }
    if (m.type === 'AppendEntries') {
      for (const e of m.entries) if (this.store.termAt(e.index) !== e.term) fail(`entry ${e.index}@${e.term} is not stored`);
    }
  }
}

/** The harness's disk never fills, so the runtime never retries: it needs no timers. */
const NO_CLOCK = {
  now: (): number => 0,
  setTimer(): () => void {
    throw new Error('the harness has no timers');
  },
};

function encodeMachine(machine: readonly string[]): Uint8Array {
  return bytes(JSON.stringify(machine));
}

function decodeMachine(data: Uint8Array): string[] {
  return data.length === 0 ? [] : (JSON.parse(text(data)) as string[]);
}

export function makeNode(id: NodeId, peers: readonly NodeId[], options: NodeOptions = {}): TestNode {
  const node = new TestNode(id, peers, options);
  node.drain();
  return node;
}

export type Drop = (m: Message) => boolean;

/** A hand-driven cluster: nothing moves unless a test delivers, ticks or settles. */
export class Network {
  readonly ids: NodeId[];
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, oldest first. */
  queue: Message[] = [];
  /** Every message any node sent, delivered or not, in order. */
  readonly sent: Message[] = [];
  /** One line per delivered message, for traces and debugging. */
  readonly trace: string[] = [];
  private readonly down = new Set<NodeId>();
  private readonly cuts = new Set<string>();
  private drops: Drop[] = [];

  constructor(ids: readonly NodeId[], options: NodeOptions | ((id: NodeId) => NodeOptions) = {}) {
    this.ids = [...ids];
    for (const id of ids) {
      const o = typeof options === 'function' ? options(id) : options;
      this.nodes.set(id, new TestNode(id, ids, o));
    }
    this.flush();
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  isUp(id: NodeId): boolean {
    return !this.down.has(id);
  }

  private blocked(m: Message): boolean {
    return (
      this.down.has(m.from) ||
      this.down.has(m.to) ||
      this.cuts.has(`${m.from}>${m.to}`) ||
      this.drops.some((d) => d(m))
    );
  }

  /** Handles every live node's Readies; their messages join the queue (unless blocked). */
  flush(): void {
    for (const id of this.ids) {
      if (this.down.has(id)) continue;
      const out = this.node(id).drain();
      for (const m of out.messages) {
        this.sent.push(m);
        if (!this.blocked(m)) this.queue.push(m);
      }
    }
  }

  /** Delivers the oldest queued message matching `match` (default: any). Returns it, if any. */
  deliver(match: (m: Message) => boolean = () => true, rewrite?: (m: Message) => Message): Message | undefined {
    const i = this.queue.findIndex(match);
    if (i < 0) return undefined;
    const [original] = this.queue.splice(i, 1);
    const m = rewrite !== undefined ? rewrite(original!) : original!;
    if (this.blocked(m)) return m;
    this.trace.push(describe(m));
    this.node(m.to).raft.step(this.withSnapshotData(m));
    return m;
  }

  /** The runtime attaches the bytes of its saved snapshot to an InstallSnapshot before sending. */
  private withSnapshotData(m: Message): Message {
    if (m.type !== 'InstallSnapshot' || m.snapshot.data.length > 0) return m;
    const saved = this.node(m.from).store.snapshot;
    if (saved === null || saved.meta.index !== m.snapshot.meta.index) throw new Error('no saved snapshot for InstallSnapshot');
    return { ...m, snapshot: saved };
  }

  /** Delivers until nothing is in flight and nobody has a Ready, each message through `rewrite`. Bounded. */
  settle(rewrite?: (m: Message) => Message, maxMessages = 100_000): void {
    let delivered = 0;
    for (;;) {
      this.flush();
      if (this.queue.length === 0) return;
      while (this.queue.length > 0) {
        this.deliver(() => true, rewrite);
        if (++delivered > maxMessages) throw new Error('the network never became quiescent');
      }
    }
  }

  /** n rounds of: every live node ticks once, then the network settles. */
  tick(n = 1, ids: readonly NodeId[] = this.ids): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) if (!this.down.has(id)) this.raft(id).tick();
      this.settle();
    }
  }

  /** Ticks until `done` holds; returns the ticks it took. Throws after `max`. */
  tickUntil(done: () => boolean, max = 200, ids?: readonly NodeId[]): number {
    for (let i = 0; i <= max; i++) {
      if (done()) return i;
      this.tick(1, ids);
    }
    throw new Error(`condition not reached within ${max} ticks`);
  }

  /** `id` campaigns and the network settles; it must win. */
  elect(id: NodeId): void {
    this.raft(id).campaign();
    this.settle();
    if (this.raft(id).role !== 'leader') throw new Error(`${id} did not win: ${this.raft(id).role}`);
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => !this.down.has(id) && this.raft(id).role === 'leader');
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  partition(...groups: NodeId[][]): void {
    for (const g of groups) for (const h of groups) if (g !== h) for (const a of g) for (const b of h) this.cut(a, b);
  }

  isolate(id: NodeId): void {
    for (const other of this.ids) if (other !== id) this.cut(id, other);
  }

  /** Drops every future message matching `drop` until heal(). */
  dropWhere(drop: Drop): void {
    this.drops.push(drop);
  }

  heal(): void {
    this.cuts.clear();
    this.drops = [];
  }

  crash(id: NodeId): void {
    this.down.add(id);
    this.queue = this.queue.filter((m) => m.to !== id);
    this.node(id).crash();
  }

  restart(id: NodeId): void {
    this.down.delete(id);
  }

  /** The terms of a node's log from index 1 (undefined where compacted). */
  terms(id: NodeId): (number | undefined)[] {
    const r = this.raft(id);
    const out: (number | undefined)[] = [];
    for (let i = 1; i <= r.lastIndex; i++) out.push(r.termAt(i));
    return out;
  }
}

export function describe(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'RequestVote':
      return `${head}${m.preVote ? ' pre' : ''} last=${m.lastLogIndex}@${m.lastLogTerm}`;
    case 'RequestVoteResponse':
      return `${head}${m.preVote ? ' pre' : ''} ${m.voteGranted ? 'granted' : 'refused'}`;
    case 'AppendEntries':
      return `${head} prev=${m.prevLogIndex}@${m.prevLogTerm} n=${m.entries.length} commit=${m.leaderCommit}`;
    case 'AppendEntriesResponse':
      return m.success ? `${head} ok match=${m.matchIndex}` : `${head} reject at ${m.rejectedIndex} hint=${m.conflictIndex}@${m.conflictTerm}`;
    case 'InstallSnapshot':
      return `${head} snapshot=${m.snapshot.meta.index}@${m.snapshot.meta.term}`;
    case 'InstallSnapshotResponse':
      return `${head} match=${m.matchIndex}`;
    case 'TimeoutNow':
      return head;
    case 'Removed':
      return `${head} config=${m.configIndex}`;
  }
}

/** Messages of one type, narrowed. */
export function ofType<T extends Message['type']>(ms: readonly Message[], type: T): Extract<Message, { type: T }>[] {
  return ms.filter((m): m is Extract<Message, { type: T }> => m.type === type);
}

/** Sorts messages by recipient so tests can compare whole lists. */
export function byRecipient<M extends Message>(ms: readonly M[]): M[] {
  return [...ms].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

/** A copy of a message without the fields the paper leaves to the implementation. */
export function withoutSeq(m: Message): Record<string, unknown> {
  const { seq: _seq, ...rest } = m as Message & { seq?: number };
  return rest;
}

export function appendEntries(
  from: NodeId,
  to: NodeId,
  term: number,
  prevLogIndex: number,
  prevLogTerm: number,
  entries: readonly Entry[],
  leaderCommit: number,
  seq = 0,
): Message {
  return { type: 'AppendEntries', from, to, term, prevLogIndex, prevLogTerm, entries, leaderCommit, seq };
}

export function requestVote(from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number, preVote = false): Message {
  return { type: 'RequestVote', from, to, term, preVote, lastLogIndex, lastLogTerm, transfer: false };
}

export function voteResponse(from: NodeId, to: NodeId, term: number, voteGranted: boolean, preVote = false): Message {
  return { type: 'RequestVoteResponse', from, to, term, preVote, voteGranted };
}

/** A node that has drained its start-up Ready: ready for one-input-at-a-time tests. */
export function nodeFrom(id: NodeId, voters: readonly NodeId[], spec: StateSpec, options: NodeOptions = {}): TestNode {
  return makeNode(id, voters, { ...options, state: stateOf(voters, spec) });
}
