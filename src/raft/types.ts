// The vocabulary of the consensus core: log entries, persistent state, messages (Figure 2) and
// the Ready batch the runtime consumes. Indexes and terms are plain numbers, kept at or below
// MAX_TERM and MAX_INDEX (below), far beyond any log this process could write.

export type NodeId = string;

/**
 * The largest term a node adopts, sends or campaigns in: 2^48. The peer codec carries terms as
 * varints up to 2^53 − 1, and a node must always be able to encode what it sends next — above
 * all currentTerm + 1 when it campaigns (§5.2) or pre-votes (thesis §9.6). Adopting whatever a
 * message claims (§5.1) once let a single AppendEntries of term 2^53 − 1 spread to every server
 * and leave none able to stand again. 2^48 is an election every millisecond for 8,900 years, yet
 * leaves a factor of 32 of headroom, so term arithmetic never leaves the safe integers. A message
 * above it is invalid and dropped (validate.ts); a node at MAX_TERM never campaigns (election.ts).
 */
export const MAX_TERM = 2 ** 48;

/**
 * The largest log index: 2^48, a million entries a second for 8.9 years, with the same headroom
 * as MAX_TERM: lastIndex + 1, prevLogIndex + entries.length and conflict hints (lastIndex + 1)
 * stay well inside what the codec encodes. A leader refuses proposals past it.
 */
export const MAX_INDEX = 2 ** 48;

/** A node id travels as a u8-length-prefixed UTF-8 string in every peer message (transport codec). */
export const MAX_NODE_ID_BYTES = 255;

/** What a log entry carries. `config` entries hold an encoded Configuration (thesis §4.1). */
export const ENTRY_TYPES = ['normal', 'config'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

/**
 * One log entry. Never mutated once created: the same object is shared by the log, the Ready
 * handed to storage and every AppendEntries that carries it. A `normal` entry with empty data is
 * the no-op a new leader appends (§8).
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** State that MUST be on stable storage before any message that depends on it leaves (Figure 2). */
export interface HardState {
  readonly currentTerm: number;
  readonly votedFor: NodeId | null;
  /** Persisted so a restart can re-apply committed entries at once; not required for safety. */
  readonly commitIndex: number;
}

export const ROLES = ['follower', 'pre-candidate', 'candidate', 'leader'] as const;
export type Role = (typeof ROLES)[number];

/**
 * The membership in force (thesis §4.3). `votersOutgoing` is non-empty only during joint
 * consensus (C_old,new), when elections and commitment need a majority of both sets.
 */
export interface Configuration {
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMeta {
  /** Last log index the snapshot covers (lastIncludedIndex, §7). */
  readonly index: number;
  /** Term of that entry (lastIncludedTerm, §7). */
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly config: Configuration;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The state machine's bytes. The core never looks inside. */
  readonly data: Uint8Array;
}

/**
 * Reads of bytes kept outside memory (a file), a range at a time: what a state machine reads its
 * snapshot back through (the key-value store's base tier, src/kv/base-table.ts RecordWindow).
 */
export interface ByteWindow {
  /** The window's bytes: replaced by load() when it needs a larger buffer. */
  readonly buf: Uint8Array;
  /** Makes bytes [start, end) readable in `buf` and returns where `start` lies there; earlier ones may be overwritten. Throws if they cannot be read. */
  load(start: number, end: number): number;
  /** Lets go of what the window holds open; reads then throw. */
  close(): void;
}

/**
 * A snapshot's bytes where they lie (its file, checked), read through windows instead of held in
 * memory: what a restart restores from (docs/storage.md, "Restored through the file").
 */
export interface SnapshotBytesSource {
  /** The snapshot's length in bytes. */
  readonly bytes: number;
  /** A window over bytes [start, start + length), which the caller closes. Throws if they cannot be read. */
  window(start: number, length: number): ByteWindow;
}

/** The same with the snapshot's meta: what storage opens (RaftStorage.openSnapshot). */
export interface SnapshotSource extends SnapshotBytesSource {
  readonly meta: SnapshotMeta;
}

/**
 * Where a state machine writes a snapshot straight to storage, chunk by chunk, instead of into
 * one buffer of its whole size (docs/storage.md, "Snapshots written straight to their file").
 * The core never sees it: storage makes one (StoragePort.snapshotWriter), the runtime hands it to
 * the state machine's beginSnapshot(), and saves it (saveWrittenSnapshot) once the state machine
 * says it is written. Nothing written is durable before that save.
 */
export interface SnapshotWriter {
  /** The snapshot it writes. */
  readonly meta: SnapshotMeta;
  /** The size of the buffers it takes, written as they fill. */
  readonly chunkBytes: number;
  /** Once, before the first chunk: the snapshot's length in bytes. */
  begin(bytes: number): void;
  /**
   * Appends `buf[0, length)`. The writer owns `buf` from now on: it may hand it back, once
   * written, through spare(). Writes go on in the background.
   */
  write(buf: Uint8Array, length: number): void;
  /** A buffer written and no longer needed, to fill again; null if none. */
  spare(): Uint8Array | null;
  /** Enough is waiting for the disk: the state machine waits (a later slice) before writing more. */
  readonly isBehind: boolean;
  /** Whether all `begin()` announced is written (not yet durable). Throws the error of a write that failed. */
  isWritten(): boolean;
  /** What begin() announced; -1 before. */
  readonly bytes: number;
  /** Reads of the snapshot's bytes [start, start + length), once isWritten(): they stay readable after the save. */
  window(start: number, length: number): ByteWindow;
  /** Gives the snapshot up before it is saved: what was written is deleted. */
  abandon(): void;
}

// ---- Messages (Figure 2, §7, thesis §3.10, §9.6) ----------------------------------------------

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's currentTerm, or for a PreVote request the term it would campaign in. */
  readonly term: number;
}

export interface RequestVote extends Envelope {
  readonly type: 'RequestVote';
  /** Thesis §9.6: asks "would you vote for me?" without anyone changing term. */
  readonly preVote: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set by a leadership transfer (thesis §3.10): bypasses the CheckQuorum lease. */
  readonly transfer: boolean;
}

export interface RequestVoteResponse extends Envelope {
  readonly type: 'RequestVoteResponse';
  readonly preVote: boolean;
  readonly voteGranted: boolean;
}

export interface AppendEntries extends Envelope {
  readonly type: 'AppendEntries';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly leaderCommit: number;
  /** Leader's round number, echoed in the response; ReadIndex (thesis §6.4) counts echoes. */
  readonly seq: number;
  /**
   * Not in the paper: the last index of the leader's own log that is durable on its disk (0 or
   * absent: not told, as from a peer that predates the field, or while a configuration change is
   * pending). A follower counts it, with its own durable copy, toward a majority of its own
   * (follower.ts, commitFromDurableCopies): in a 3-voter cluster it learns that an entry it
   * forwarded is committed without waiting for the leader's next message.
   */
  readonly leaderStable?: number;
}

export interface AppendEntriesResponse extends Envelope {
  readonly type: 'AppendEntriesResponse';
  readonly success: boolean;
  /** On success: the follower's log matches the leader's up to here. */
  readonly matchIndex: number;
  /** The prevLogIndex of the request this answers (lets the leader drop stale rejections). */
  readonly rejectedIndex: number;
  /** On rejection: the term of the follower's entry at prevLogIndex, 0 if it has none. */
  readonly conflictTerm: number;
  /** On rejection: the first index of conflictTerm in the follower's log, or its lastIndex + 1. */
  readonly conflictIndex: number;
  readonly seq: number;
}

export interface InstallSnapshot extends Envelope {
  readonly type: 'InstallSnapshot';
  readonly snapshot: Snapshot;
  readonly seq: number;
}

export interface InstallSnapshotResponse extends Envelope {
  readonly type: 'InstallSnapshotResponse';
  /** The follower's log matches the leader's up to here (the snapshot index, or its commit). */
  readonly matchIndex: number;
  readonly seq: number;
}

export interface TimeoutNow extends Envelope {
  readonly type: 'TimeoutNow';
}

/**
 * Leader → a server its configuration no longer includes, once the configuration entry that
 * dropped it (`configIndex`) is committed and the server holds it: it is out of the cluster and
 * may stop. Not one of the paper's RPCs; the thesis (§4.2.2) leaves telling a removed server to
 * the implementation. Nothing answers it.
 */
export interface Removed extends Envelope {
  readonly type: 'Removed';
  readonly configIndex: number;
}

/** What a server knows of its own removal: who told it, and the configuration entry that removed it. */
export interface RemovedNotice {
  readonly by: NodeId;
  readonly configIndex: number;
}

export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | Removed;

export type MessageType = Message['type'];

// ---- The Ready batch: everything the core wants done ------------------------------------------

export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
}

/** A linearizable read may be served once the state machine has applied `index` (thesis §6.4). */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/**
 * The runtime's contract for one Ready: what it MUST do, in this order (src/node/runtime.ts is
 * the one runtime that does it; docs/runtime.md walks through it):
 *   1. Send `messages` at once. They depend on nothing this Ready writes, so they MAY leave
 *      BEFORE its writes are queued, let alone durable.
 *   2. Thesis §10.2.1, the one exception to "persist before you speak" (Figure 2), and the reason
 *      step 1 exists: a leader's AppendEntries, InstallSnapshot, heartbeats, TimeoutNow and Removed
 *      leave in step 1, racing the leader's own write of the entries they carry. This is safe
 *      because the leader counts its own copy toward commitment only up to what advance() has
 *      reported durable, so nothing commits on the strength of this Ready's unsynced write; its
 *      term and vote are already durable, because of step 3. Pre-vote requests and answers
 *      (thesis §9.6) leave in step 1 too: they change no state and bind nobody.
 *   3. A Ready that changes currentTerm or votedFor has NO messages for step 1: everything it
 *      sends waits for its sync (else a leader could send AppendEntries of a term a crash then
 *      forgets, and lead that term a second time with another log).
 *   4. Persist `snapshot` (if any), then `entries` (the first may overwrite: truncate the stored
 *      log from `entries[0].index` before appending), then `hardState` (if any); if `mustSync`,
 *      sync.
 *   5. Apply `committedEntries` in order (after restoring the state machine from `snapshot`).
 *      They are committed, hence durable on a majority already: this MAY happen BEFORE the sync
 *      of step 4 completes.
 *   6. Answer `readStates` once the state machine has applied their index.
 *   7. Only AFTER step 4 is durable, send `messagesAfterSync`: votes, vote grants and every
 *      acknowledgement of entries or snapshots. One that outlived a crash which forgot what it
 *      promised would break Election Safety or lose a committed entry.
 *   8. Call advance(). No other ready() until then.
 * Local snapshots (§7) are no Ready's: the runtime captures the state machine at its applied
 * index BETWEEN Readies (so the snapshot covers only entries durable in the local log); its
 * serialization (in slices, if the state machine can) and its save MAY then run beside the
 * Readies that follow. compact() the core and the storage only
 * AFTER that save is durable. A Ready's `snapshot` MUST NOT be installed while a local snapshot
 * is being saved or its log compacted: step 4 waits for it (its step 1 messages need not).
 * The core sorts each message into `messages` or `messagesAfterSync` where it makes it
 * (outbox.ts), so a runtime never inspects message types to decide.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  /** May leave now, before this Ready's writes are durable (steps 1–3). */
  readonly messages: readonly Message[];
  /** MUST NOT leave before this Ready's writes are durable (step 7). */
  readonly messagesAfterSync: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /**
   * Step 4 MUST end with a sync: the Ready holds entries, a snapshot, or a change of currentTerm
   * or votedFor. False when its only write is a hard state whose commitIndex moved: that one may
   * be queued and left for the next sync (commitIndex is not needed for safety), and
   * `messagesAfterSync` may then leave at once.
   */
  readonly mustSync: boolean;
}

/** What a node recovers from stable storage to rebuild its core after a restart. */
export interface InitialState {
  readonly hardState: HardState;
  /** Metadata of the newest snapshot, or null if none was ever taken. */
  readonly snapshot: SnapshotMeta | null;
  /** The log after the snapshot, contiguous and in order. */
  readonly entries: readonly Entry[];
  /** The index the state machine has applied up to (at least the snapshot's index). */
  readonly applied: number;
}
