// One gRPC channel (one HTTP/2 connection) to one etcd member, and the calls the benchmarks make
// on it: unary ones, and the bidirectional streams of Watch and LeaseKeepAlive. Every call in
// flight on the channel is a stream of that one connection, the way etcd's own Go client
// (clientv3) talks to each endpoint. No retries: a failed call is reported as it failed.
import { Client, credentials, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import {
  etcdMethods, type BidiMethod, type EtcdMethods, type Int64, type LeaseGrantResponse, type LeaseRevokeResponse, type LockResponse, type MemberListResponse,
  type PutRequest, type PutResponse, type RangeRequest, type RangeResponse, type StatusResponse, type UnaryMethod, type UnlockResponse,
} from './etcd-proto.js';

export class EtcdChannel {
  private readonly client: Client;
  private readonly methods: EtcdMethods;
  private readonly putEncodedMethod: UnaryMethod<EncodedPut, PutResponse>;

  /** `address` is `host:port` of the member's client URL. */
  constructor(readonly address: string) {
    this.methods = etcdMethods();
    this.putEncodedMethod = { ...this.methods.put, serialize: unwrap };
    // A private subchannel pool: two channels to one address are two connections, as asked.
    // No retries (grpc-js would otherwise retry some failures on its own): a call fails as it failed.
    this.client = new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_retries': 0 });
  }

  put(request: PutRequest, timeoutMs: number): Promise<PutResponse> {
    return this.call(this.methods.put, request, timeoutMs);
  }

  /** A Put whose request was encoded beforehand (`encodePut`), so the hot path does not encode it again. */
  putEncoded(request: EncodedPut, timeoutMs: number): Promise<PutResponse> {
    return this.call(this.putEncodedMethod, request, timeoutMs);
  }

  range(request: RangeRequest, timeoutMs: number): Promise<RangeResponse> {
    return this.call(this.methods.range, request, timeoutMs);
  }

  memberList(timeoutMs: number): Promise<MemberListResponse> {
    return this.call(this.methods.memberList, {}, timeoutMs);
  }

  status(timeoutMs: number): Promise<StatusResponse> {
    return this.call(this.methods.status, {}, timeoutMs);
  }

  leaseGrant(ttlSeconds: number, timeoutMs: number): Promise<LeaseGrantResponse> {
    return this.call(this.methods.leaseGrant, { TTL: ttlSeconds }, timeoutMs);
  }

  leaseRevoke(id: Int64, timeoutMs: number): Promise<LeaseRevokeResponse> {
    return this.call(this.methods.leaseRevoke, { ID: id }, timeoutMs);
  }

  /** v3lock's Lock: waits (up to `timeoutMs`) until the lock is held with `lease`. */
  lock(name: Uint8Array, lease: Int64, timeoutMs: number): Promise<LockResponse> {
    return this.call(this.methods.lock, { name, lease }, timeoutMs);
  }

  unlock(key: Uint8Array, timeoutMs: number): Promise<UnlockResponse> {
    return this.call(this.methods.unlock, { key }, timeoutMs);
  }

  /** Opens a bidirectional stream (Watch, LeaseKeepAlive) on this channel; no deadline. */
  bidi<Request, Response>(m: BidiMethod<Request, Response>): ClientDuplexStream<Request, Response> {
    return this.client.makeBidiStreamRequest(m.path, m.serialize, m.deserialize);
  }

  close(): void {
    this.client.close();
  }

  private call<Request, Response>(m: UnaryMethod<Request, Response>, request: Request, timeoutMs: number): Promise<Response> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.serialize, m.deserialize, request, { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, response?: Response) => {
        if (err !== null) reject(new Error(`${m.path} on ${this.address}: ${err.details || err.message}`));
        else if (response === undefined) reject(new Error(`${m.path} on ${this.address}: no answer`));
        else resolve(response);
      });
    });
  }
}

/** A PutRequest in its wire form. */
export interface EncodedPut {
  readonly bytes: Buffer;
}

export function encodePut(request: PutRequest): EncodedPut {
  return { bytes: etcdMethods().put.serialize(request) };
}

const unwrap = (request: EncodedPut): Buffer => request.bytes;

/** `http://127.0.0.1:2379` -> `127.0.0.1:2379`, the form a gRPC channel takes. */
export function grpcAddress(clientUrl: string): string {
  const u = new URL(clientUrl);
  if (u.protocol !== 'http:') throw new Error(`only plain http client URLs are supported, not ${clientUrl}`);
  return u.host;
}
