// The consensus core's public surface.
export type {
  AppendEntries,
  AppendEntriesResponse,
  Configuration,
  Entry,
  EntryType,
  HardState,
  InitialState,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Ready,
  Removed,
  RemovedNotice,
  RequestVote,
  RequestVoteResponse,
  Role,
  Snapshot,
  SnapshotWriter,
  ByteWindow,
  SnapshotBytesSource,
  SnapshotSource,
  SnapshotMeta,
  SoftState,
  TimeoutNow,
} from './types.js';
export { ENTRY_TYPES, MAX_INDEX, MAX_NODE_ID_BYTES, MAX_TERM, ROLES } from './types.js';
export { DROP_REASONS } from './validate.js';
export type { DropReason } from './validate.js';
export { Raft, DEFAULT_RAFT_OPTIONS } from './raft.js';
export type { RaftOptions, ProgressView } from './raft.js';
export { bootstrapState } from './bootstrap.js';
export {
  EMPTY_CONFIGURATION,
  configurationProblem,
  decodeConfiguration,
  encodeConfiguration,
  isJoint,
  isValidNodeId,
  isVoter,
  members,
  sameConfiguration,
} from './configuration.js';
export { committedIndex, hasQuorum, majorityIndex, voteResult } from './quorum.js';
export type { VoteResult } from './quorum.js';
export { PROGRESS_STATES } from './progress.js';
export { CONFIG_CHANGE_TYPES, InvalidConfigChangeError, applyChanges } from './confchange.js';
export type { ConfigChange, ConfigChangeType } from './confchange.js';
export type { ProgressState } from './progress.js';
export { RaftError, NotLeaderError, ProposalDroppedError, ChangeInProgressError, PROPOSAL_OUTCOMES } from './errors.js';
export type { ProposalOutcome } from './errors.js';
export type { StateMachine } from './state-machine.js';
