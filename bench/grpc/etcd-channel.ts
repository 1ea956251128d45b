// One gRPC channel (one HTTP/2 connection) to one etcd member, and the unary calls the benchmark
// makes on it. Every call in flight on the channel is a stream of that one connection, the way
// etcd's own Go client (clientv3) talks to each endpoint. No retries: a failed call is reported
// as it failed.
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { etcdMethods, type EtcdMethods, type MemberListResponse, type PutRequest, type PutResponse, type RangeRequest, type RangeResponse, type StatusResponse, type UnaryMethod } from './etcd-proto.js';

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
