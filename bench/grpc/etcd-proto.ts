// The etcd v3 gRPC API of proto/etcd/rpc.proto, loaded at run time with @grpc/proto-loader, and
// the TypeScript shapes its messages take with the loader options below. tsc does not copy
// .proto files, so the path is resolved from this compiled file to the repository root
// (dist/bench/grpc/ or any dist-*/bench/grpc/ -> ../../../proto/etcd/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadSync, type MethodDefinition, type Options, type PackageDefinition } from '@grpc/proto-loader';

export const ETCD_PROTO_DIR = fileURLToPath(new URL('../../../proto/etcd/', import.meta.url));

// 64-bit integers as decimal strings (member and cluster ids use all 64 bits), bytes as Buffers,
// absent scalars as their defaults and absent messages as null: what the interfaces below say.
const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, bytes: Buffer, defaults: true, includeDirs: [ETCD_PROTO_DIR] };

export interface ResponseHeader {
  readonly cluster_id: string;
  readonly member_id: string;
  readonly revision: string;
  readonly raft_term: string;
}

export interface KeyValue {
  readonly key: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly version: string;
  readonly value: Buffer;
  readonly lease: string;
}

export interface PutRequest {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly prev_kv?: boolean;
}

export interface PutResponse {
  readonly header: ResponseHeader | null;
  readonly prev_kv: KeyValue | null;
}

export interface RangeRequest {
  readonly key: Uint8Array;
  /** Empty: `key` alone; see rpc.proto for prefixes and open ranges. */
  readonly range_end?: Uint8Array;
  readonly limit?: number;
  readonly serializable?: boolean;
  readonly count_only?: boolean;
}

export interface RangeResponse {
  readonly header: ResponseHeader | null;
  readonly kvs: readonly KeyValue[];
  readonly more: boolean;
  readonly count: string;
}

export interface Member {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

export interface MemberListResponse {
  readonly header: ResponseHeader | null;
  readonly members: readonly Member[];
}

export interface StatusResponse {
  readonly header: ResponseHeader | null;
  readonly version: string;
  /** Member id of the leader this member knows; '0' for none. */
  readonly leader: string;
  readonly raftIndex: string;
  readonly raftTerm: string;
  readonly raftAppliedIndex: string;
  readonly errors: readonly string[];
}

export type EmptyRequest = Record<string, never>;

/** One unary method: its gRPC path and the loaded (de)serializers. */
export interface UnaryMethod<Request, Response> {
  readonly path: string;
  readonly serialize: (request: Request) => Buffer;
  readonly deserialize: (bytes: Buffer) => Response;
}

export interface EtcdMethods {
  readonly put: UnaryMethod<PutRequest, PutResponse>;
  readonly range: UnaryMethod<RangeRequest, RangeResponse>;
  readonly memberList: UnaryMethod<EmptyRequest, MemberListResponse>;
  readonly status: UnaryMethod<EmptyRequest, StatusResponse>;
}

let loaded: EtcdMethods | null = null;

/** The methods the benchmark calls, loaded once per process. */
export function etcdMethods(): EtcdMethods {
  if (loaded !== null) return loaded;
  const file = `${ETCD_PROTO_DIR}rpc.proto`;
  if (!existsSync(file)) throw new Error(`the etcd API definition is missing: ${file} (proto/ belongs beside dist/ in the repository)`);
  const definition = loadSync(file, LOADER_OPTIONS);
  loaded = {
    put: method(definition, 'KV', 'Put'),
    range: method(definition, 'KV', 'Range'),
    memberList: method(definition, 'Cluster', 'MemberList'),
    status: method(definition, 'Maintenance', 'Status'),
  };
  return loaded;
}

// The casts are the one place where the loader's untyped definitions meet the interfaces above;
// the proto-loader test (test/bench/etcd-proto.test.ts) checks they agree on real bytes.
function method<Request, Response>(definition: PackageDefinition, service: string, name: string): UnaryMethod<Request, Response> {
  const svc = definition[`etcdserverpb.${service}`] as unknown as Record<string, MethodDefinition<Request, Response> | undefined> | undefined;
  const m = svc?.[name];
  if (m === undefined || typeof m.path !== 'string' || m.requestStream || m.responseStream) throw new Error(`etcdserverpb.${service}/${name} is not a unary method of rpc.proto`);
  return { path: m.path, serialize: m.requestSerialize, deserialize: m.responseDeserialize };
}
