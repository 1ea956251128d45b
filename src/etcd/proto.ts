// The etcd v3 gRPC services raftkv serves, loaded at start from the .proto files that ship in
// proto/etcd/ (rpc.proto, v3lock.proto, v3election.proto: etcd's names and field numbers). tsc
// does not copy .proto files, so the directory is resolved from this compiled file
// (dist/src/etcd/ -> ../../../proto/etcd/).
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

export const ETCD_PROTO_DIR = fileURLToPath(new URL('../../../proto/etcd/', import.meta.url));

/**
 * How messages look to the handlers: field names as in the .proto, 64-bit integers as decimal
 * strings in requests (ids use all 64 bits; int64.ts checks them), bytes as Buffers, enums by
 * name, unset scalars as their defaults, and `oneofs` naming the member of a oneof that is set.
 */
export const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true, includeDirs: [ETCD_PROTO_DIR] };

export interface EtcdServices {
  readonly kv: ServiceDefinition;
  readonly watch: ServiceDefinition;
  readonly lease: ServiceDefinition;
  readonly cluster: ServiceDefinition;
  readonly maintenance: ServiceDefinition;
  readonly auth: ServiceDefinition;
  readonly lock: ServiceDefinition;
  readonly election: ServiceDefinition;
}

let loaded: EtcdServices | null = null;

export function etcdServices(): EtcdServices {
  if (loaded !== null) return loaded;
  const def = loadSync(['rpc.proto', 'v3lock.proto', 'v3election.proto'], LOADER_OPTIONS);
  const pkg = loadPackageDefinition(def) as unknown as Record<string, Record<string, { service: ServiceDefinition }>>;
  const rpc = pkg['etcdserverpb']!;
  loaded = {
    kv: rpc['KV']!.service,
    watch: rpc['Watch']!.service,
    lease: rpc['Lease']!.service,
    cluster: rpc['Cluster']!.service,
    maintenance: rpc['Maintenance']!.service,
    auth: rpc['Auth']!.service,
    lock: pkg['v3lockpb']!['Lock']!.service,
    election: pkg['v3electionpb']!['Election']!.service,
  };
  return loaded;
}
