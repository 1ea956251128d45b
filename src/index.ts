// The package's main entry (`import … from 'raftkv'`): the library layers a program embeds to run
// Raft itself: the consensus core's types, RaftNode (the runtime in real time), FileStorage (the
// write-ahead log and snapshots), TcpTransport (the peer channel) and the key-value state machine.
// The HTTP client is the separate entry 'raftkv/client' (src/client/index.ts), so a program that
// only talks to a cluster loads none of this.
export * from './raft/index.js';
export * from './node/index.js';
export * from './storage/index.js';
export * from './transport/index.js';
export * from './kv/index.js';
