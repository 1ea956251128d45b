// The runtime: drives the consensus core with real time, storage and a transport.
export { RaftNode } from './raft-node.js';
export { StoppedError, DEFAULT_NODE_OPTIONS } from './options.js';
export type { Applied, NodeLogger, NodeStats, PeerSender, RaftNodeOptions } from './options.js';
