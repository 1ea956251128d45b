// The runtime: drives the consensus core with real time, storage and a transport.
export { RaftNode, StoppedError, DEFAULT_NODE_OPTIONS } from './raft-node.js';
export type { Applied, NodeLogger, NodeStats, PeerSender, RaftNodeOptions } from './raft-node.js';
