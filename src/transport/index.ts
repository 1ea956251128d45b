// Public surface of the peer transport: the TCP transport, its options and statistics, and the
// message codec (also used by anything else that needs Messages as bytes), and the handshake
// types a server needs to decide who may connect (checkHello, acceptSnapshot).
export { TcpTransport } from './tcp-transport.js';
export { RpcError } from './rpc-client.js';
export { DEFAULT_TRANSPORT_OPTIONS } from './types.js';
export type {
  HelloCheck,
  HelloPeer,
  PeerAddress,
  PeerStats,
  SnapshotCheck,
  TcpTransportOptions,
  Transport,
  TransportLogger,
  TransportRejections,
  TransportStats,
  TransportTlsOptions,
} from './types.js';
export type { Hello, StreamPurpose } from './frame.js';
export { MessageEncoder, encodeMessage, decodeMessage, encodedLength, MESSAGE_TYPE_CODES } from './codec.js';
export { CodecError } from './binary.js';
export { EntryEncodingCache } from './entry-cache.js';
export type { EntryCacheStats } from './entry-cache.js';
export { FrameDecoder } from './frame.js';
export { consoleLogger, silentLogger } from './logger.js';
