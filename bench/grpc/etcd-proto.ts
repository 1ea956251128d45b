// The etcd v3 gRPC API of proto/etcd/rpc.proto and proto/etcd/v3lock.proto, loaded at run time
// with @grpc/proto-loader, and the TypeScript shapes its messages take with the loader options
// below. tsc does not copy
// .proto files, so the path is resolved from this compiled file to the repository root
// (dist/bench/grpc/ or any dist-*/bench/grpc/ -> ../../../proto/etcd/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadSync, type MethodDefinition, type Options, type PackageDefinition } from '@grpc/proto-loader';

export const ETCD_PROTO_DIR = fileURLToPath(new URL('../../../proto/etcd/', import.meta.url));

// 64-bit integers as decimal strings (member and cluster ids use all 64 bits), enums by name,
// bytes as Buffers, absent scalars as their defaults and absent messages as null: what the
// interfaces below say. A oneof member that is not set is absent (undefined). In requests a
// 64-bit field takes a number or a decimal string.
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
  /** The lease to attach the key to; 0 or absent for none. */
  readonly lease?: Int64;
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

/** A 64-bit integer in a request: a safe integer, or a decimal string for any int64. */
export type Int64 = number | string;

export interface DeleteRangeRequest {
  readonly key: Uint8Array;
  readonly range_end?: Uint8Array;
  readonly prev_kv?: boolean;
}

export interface DeleteRangeResponse {
  readonly header: ResponseHeader | null;
  readonly deleted: string;
  readonly prev_kvs: readonly KeyValue[];
}

export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';

/** One guard test; set the one of version … lease that `target` names. */
export interface Compare {
  readonly result: CompareResult;
  readonly target: CompareTarget;
  readonly key: Uint8Array;
  readonly version?: Int64;
  readonly create_revision?: Int64;
  readonly mod_revision?: Int64;
  readonly value?: Uint8Array;
  readonly lease?: Int64;
  readonly range_end?: Uint8Array;
}

/** Exactly one field set. */
export interface RequestOp {
  readonly request_range?: RangeRequest;
  readonly request_put?: PutRequest;
  readonly request_delete_range?: DeleteRangeRequest;
  readonly request_txn?: TxnRequest;
}

/** The one field of the RequestOp's kind is set. */
export interface ResponseOp {
  readonly response_range?: RangeResponse;
  readonly response_put?: PutResponse;
  readonly response_delete_range?: DeleteRangeResponse;
  readonly response_txn?: TxnResponse;
}

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface TxnResponse {
  readonly header: ResponseHeader | null;
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
}

export interface WatchCreateRequest {
  readonly key: Uint8Array;
  readonly range_end?: Uint8Array;
  /** 0 or absent: changes after the watch is created. */
  readonly start_revision?: Int64;
  readonly progress_notify?: boolean;
  readonly filters?: readonly ('NOPUT' | 'NODELETE')[];
  readonly prev_kv?: boolean;
  /** etcd 3.4+: the id this watch gets on its stream; 0 or absent lets the server pick. */
  readonly watch_id?: Int64;
  readonly fragment?: boolean;
}

/** Exactly one field set. */
export interface WatchRequest {
  readonly create_request?: WatchCreateRequest;
  readonly cancel_request?: { readonly watch_id: Int64 };
  readonly progress_request?: Record<string, never>;
}

export interface WatchEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: KeyValue | null;
  readonly prev_kv: KeyValue | null;
}

export interface WatchResponse {
  readonly header: ResponseHeader | null;
  readonly watch_id: string;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly fragment: boolean;
  readonly events: readonly WatchEvent[];
}

export interface LeaseGrantRequest {
  readonly TTL: Int64;
  /** 0 or absent: the server picks the id. */
  readonly ID?: Int64;
}

export interface LeaseGrantResponse {
  readonly header: ResponseHeader | null;
  readonly ID: string;
  readonly TTL: string;
  readonly error: string;
}

export interface LeaseIdRequest {
  readonly ID: Int64;
}

export interface LeaseRevokeResponse {
  readonly header: ResponseHeader | null;
}

export interface LeaseKeepAliveResponse {
  readonly header: ResponseHeader | null;
  readonly ID: string;
  /** The TTL renewed to, in seconds; '0' when the lease is gone. */
  readonly TTL: string;
}

export interface LeaseTimeToLiveRequest {
  readonly ID: Int64;
  readonly keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  readonly header: ResponseHeader | null;
  readonly ID: string;
  /** Seconds left; '-1' when the lease is gone. */
  readonly TTL: string;
  readonly grantedTTL: string;
  readonly keys: readonly Buffer[];
}

export interface LeaseLeasesResponse {
  readonly header: ResponseHeader | null;
  readonly leases: readonly { readonly ID: string }[];
}

export interface LockRequest {
  readonly name: Uint8Array;
  readonly lease: Int64;
}

export interface LockResponse {
  /** header.revision: when the caller was found first in line (at least its key's create revision). */
  readonly header: ResponseHeader | null;
  readonly key: Buffer;
}

export interface UnlockRequest {
  readonly key: Uint8Array;
}

export interface UnlockResponse {
  readonly header: ResponseHeader | null;
}

/** One unary method: its gRPC path and the loaded (de)serializers. */
export interface UnaryMethod<Request, Response> {
  readonly path: string;
  readonly serialize: (request: Request) => Buffer;
  readonly deserialize: (bytes: Buffer) => Response;
}

/** One method whose requests and answers are both streams: its gRPC path and (de)serializers. */
export interface BidiMethod<Request, Response> extends UnaryMethod<Request, Response> {
  readonly isBidi: true;
}

export interface EtcdMethods {
  readonly put: UnaryMethod<PutRequest, PutResponse>;
  readonly range: UnaryMethod<RangeRequest, RangeResponse>;
  readonly deleteRange: UnaryMethod<DeleteRangeRequest, DeleteRangeResponse>;
  readonly txn: UnaryMethod<TxnRequest, TxnResponse>;
  readonly memberList: UnaryMethod<EmptyRequest, MemberListResponse>;
  readonly status: UnaryMethod<EmptyRequest, StatusResponse>;
  readonly watch: BidiMethod<WatchRequest, WatchResponse>;
  readonly leaseGrant: UnaryMethod<LeaseGrantRequest, LeaseGrantResponse>;
  readonly leaseRevoke: UnaryMethod<LeaseIdRequest, LeaseRevokeResponse>;
  readonly leaseKeepAlive: BidiMethod<LeaseIdRequest, LeaseKeepAliveResponse>;
  readonly leaseTimeToLive: UnaryMethod<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>;
  readonly leaseLeases: UnaryMethod<EmptyRequest, LeaseLeasesResponse>;
  readonly lock: UnaryMethod<LockRequest, LockResponse>;
  readonly unlock: UnaryMethod<UnlockRequest, UnlockResponse>;
}

let loaded: EtcdMethods | null = null;

/** The methods the benchmark calls, loaded once per process. */
export function etcdMethods(): EtcdMethods {
  if (loaded !== null) return loaded;
  const files = ['rpc.proto', 'v3lock.proto'].map((f) => `${ETCD_PROTO_DIR}${f}`);
  for (const file of files) {
    if (!existsSync(file)) throw new Error(`the etcd API definition is missing: ${file} (proto/ belongs beside dist/ in the repository)`);
  }
  const definition = loadSync(files, LOADER_OPTIONS);
  loaded = {
    put: method(definition, 'etcdserverpb.KV', 'Put'),
    range: method(definition, 'etcdserverpb.KV', 'Range'),
    deleteRange: method(definition, 'etcdserverpb.KV', 'DeleteRange'),
    txn: method(definition, 'etcdserverpb.KV', 'Txn'),
    memberList: method(definition, 'etcdserverpb.Cluster', 'MemberList'),
    status: method(definition, 'etcdserverpb.Maintenance', 'Status'),
    watch: bidiMethod(definition, 'etcdserverpb.Watch', 'Watch'),
    leaseGrant: method(definition, 'etcdserverpb.Lease', 'LeaseGrant'),
    leaseRevoke: method(definition, 'etcdserverpb.Lease', 'LeaseRevoke'),
    leaseKeepAlive: bidiMethod(definition, 'etcdserverpb.Lease', 'LeaseKeepAlive'),
    leaseTimeToLive: method(definition, 'etcdserverpb.Lease', 'LeaseTimeToLive'),
    leaseLeases: method(definition, 'etcdserverpb.Lease', 'LeaseLeases'),
    lock: method(definition, 'v3lockpb.Lock', 'Lock'),
    unlock: method(definition, 'v3lockpb.Lock', 'Unlock'),
  };
  return loaded;
}

// The casts are the one place where the loader's untyped definitions meet the interfaces above;
// the proto-loader test (test/bench/etcd-proto.test.ts) checks they agree on real bytes.
function method<Request, Response>(definition: PackageDefinition, service: string, name: string): UnaryMethod<Request, Response> {
  const m = lookup<Request, Response>(definition, service, name);
  if (m === undefined || typeof m.path !== 'string' || m.requestStream || m.responseStream) throw new Error(`${service}/${name} is not a unary method of the etcd protos`);
  return { path: m.path, serialize: m.requestSerialize, deserialize: m.responseDeserialize };
}

function bidiMethod<Request, Response>(definition: PackageDefinition, service: string, name: string): BidiMethod<Request, Response> {
  const m = lookup<Request, Response>(definition, service, name);
  if (m === undefined || typeof m.path !== 'string' || !m.requestStream || !m.responseStream) throw new Error(`${service}/${name} is not a bidirectional streaming method of the etcd protos`);
  return { path: m.path, serialize: m.requestSerialize, deserialize: m.responseDeserialize, isBidi: true };
}

function lookup<Request, Response>(definition: PackageDefinition, service: string, name: string): MethodDefinition<Request, Response> | undefined {
  const svc = definition[service] as unknown as Record<string, MethodDefinition<Request, Response> | undefined> | undefined;
  return svc?.[name];
}
