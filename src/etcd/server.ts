// The etcd v3 gRPC front end of a raftkv node (`raftkv serve --etcd-addr HOST:PORT`): one gRPC
// server with etcd's KV, Watch, Lease, Cluster, Maintenance, Lock and Election services over the
// node's one store (src/server/node-server.ts hands it the running parts). It shares the client
// port's TLS material (and client-certificate check) and --auth-file, and bounds what a client
// may send: connections (--max-client-connections, as on the HTTP port), message size (etcd's
// 1.5 MiB request limit, or the node's own value limit if larger, plus gRPC's framing), streams
// per connection, watches per stream and per node, keep-alives per stream.
import { createServer, type Socket } from 'node:net';
import { Server, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { hostPortText } from '../server/address.js';
import type { FrontEnd, NodeParts, StartFrontEnd } from '../server/node-server.js';
import { clusterService, maintenanceService } from './cluster-service.js';
import { EtcdContext, type EtcdLimits } from './context.js';
import { kvService } from './kv-service.js';
import { etcdServices } from './proto.js';
import { authService } from './auth-service.js';
import { watchService } from './watch-service.js';
import { leaseService } from './lease-service.js';
import { electionService, lockService } from './lock-service.js';

/** etcd's default --max-request-bytes. */
export const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** What etcd adds to it for gRPC's own framing and the message's other fields. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

export const DEFAULT_ETCD_LIMITS = {
  maxWatchesPerStream: 1000,
  maxStreamsPerConnection: 1000,
  maxKeepAlivesPerSecond: 1000,
} as const;

/** The limits for a node: requests large enough for its largest value, watches capped by --max-watchers. */
export function etcdLimits(parts: Pick<NodeParts, 'cfg'>): EtcdLimits {
  const cfg = parts.cfg;
  return {
    maxRequestBytes: Math.max(ETCD_MAX_REQUEST_BYTES, cfg.maxValueBytes + cfg.maxKeyBytes * 2 + 64 * 1024) + GRPC_OVERHEAD_BYTES,
    maxWatchers: cfg.maxWatchers ?? 10_000,
    maxConnections: cfg.maxClientConnections,
    ...DEFAULT_ETCD_LIMITS,
  };
}

export const startEtcdServer: StartFrontEnd = async (parts) => {
  const addr = parts.cfg.etcdAddr;
  if (addr === null || addr === undefined) throw new Error('--etcd-addr is not set');
  const limits = etcdLimits(parts);
  const ctx = new EtcdContext(parts, limits);
  const options: ChannelOptions = {
    'grpc.max_receive_message_length': limits.maxRequestBytes,
    'grpc.max_send_message_length': parts.cfg.maxResponseBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    // etcd's keep-alive enforcement: clients may ping every 5 s, with or without calls.
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.keepalive_time_ms': 2 * 60 * 60 * 1000,
  };
  const server = new Server(options);
  const services = etcdServices();
  server.addService(services.kv, kvService(ctx));
  server.addService(services.cluster, clusterService(ctx));
  server.addService(services.maintenance, maintenanceService(ctx));
  server.addService(services.watch, watchService(ctx));
  server.addService(services.lease, leaseService(ctx));
  server.addService(services.lock, lockService(ctx));
  server.addService(services.auth, authService(ctx));
  server.addService(services.election, electionService(ctx));
  const tls = parts.clientTls;
  const credentials =
    tls === undefined
      ? ServerCredentials.createInsecure()
      : ServerCredentials.createSsl(tls.ca ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.requireClientCert === true);
  const target = hostPortText(addr);
  // Our own listener hands each accepted socket to grpc-js (its connection injector, TLS included),
  // so the number of connections is bounded like the HTTP port's: past it a socket is closed at once.
  const injector = server.createConnectionInjector(credentials);
  const sockets = new Set<Socket>();
  let refused = 0;
  const listener = createServer({ noDelay: true }, (socket) => {
    if (sockets.size >= limits.maxConnections) {
      refused++;
      if (refused === 1 || refused % 1000 === 0) parts.logger.warn('etcd API connections refused: --max-client-connections reached', { refused, max: limits.maxConnections });
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    injector.injectConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on the etcd address ${target}: ${err.code ?? err.message}`)));
    listener.listen(addr.port, addr.host, () => resolve());
  });
  listener.on('error', (err) => parts.logger.warn('etcd API listener error', { error: String(err) }));
  parts.logger.info('serving the etcd v3 API', { etcdAddr: target, tls: tls !== undefined });
  const frontEnd: FrontEnd = {
    close: () =>
      new Promise<void>((resolve) => {
        listener.close();
        // In-flight calls get a moment; streams (watches, keep-alives) are cut.
        injector.drain(1000);
        const cut = setTimeout(() => {
          server.forceShutdown();
          for (const socket of sockets) socket.destroy();
          resolve();
        }, 1000);
        cut.unref();
        server.tryShutdown(() => {
          injector.destroy();
          clearTimeout(cut);
          for (const socket of sockets) socket.destroy();
          resolve();
        });
      }),
  };
  return frontEnd;
};
