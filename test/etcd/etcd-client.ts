// A bare etcd v3 gRPC client for the tests, on @grpc/grpc-js and the .proto files that ship in
// proto/etcd/: unary calls that resolve with the answer or reject with the gRPC error (code and
// details kept, so tests can check etcd's codes and messages), and bidirectional streams.
import { credentials as grpcCredentials, loadPackageDefinition, Metadata, type ChannelCredentials, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ETCD_PROTO_DIR } from '../../src/etcd/proto.js';

const definition = loadSync(['rpc.proto', 'v3lock.proto', 'v3election.proto'], { keepCase: true, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true, includeDirs: [ETCD_PROTO_DIR] });
type ClientCtor = new (address: string, credentials: ChannelCredentials, options?: object) => Client;
const pkg = loadPackageDefinition(definition) as unknown as Record<string, Record<string, ClientCtor>>;

export type Service = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth' | 'Lock' | 'Election';
const PACKAGE: Record<Service, string> = { Auth: 'etcdserverpb', KV: 'etcdserverpb', Watch: 'etcdserverpb', Lease: 'etcdserverpb', Cluster: 'etcdserverpb', Maintenance: 'etcdserverpb', Lock: 'v3lockpb', Election: 'v3electionpb' };

export interface Options {
  /** PEM of the CA (TLS), and optionally the client's own certificate and key. */
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** Sent as the `token` metadata on every call. */
  readonly token?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = any;

export class EtcdTestClient {
  private readonly clients = new Map<Service, Client>();

  constructor(
    readonly address: string,
    private readonly options: Options = {},
  ) {}

  private client(service: Service): Client {
    let c = this.clients.get(service);
    if (c === undefined) {
      const creds = this.options.ca === undefined ? grpcCredentials.createInsecure() : grpcCredentials.createSsl(this.options.ca, this.options.key ?? null, this.options.cert ?? null);
      c = new pkg[PACKAGE[service]]![service]!(this.address, creds, { 'grpc.enable_retries': 0 });
      this.clients.set(service, c);
    }
    return c;
  }

  metadata(token = this.options.token): Metadata {
    const md = new Metadata();
    if (token !== undefined) md.set('token', token);
    return md;
  }

  call(service: Service, method: string, request: Message, timeoutMs = 10_000, metadata = this.metadata()): Promise<Message> {
    const c = this.client(service) as unknown as Record<string, (req: Message, md: Metadata, opts: object, cb: (err: ServiceError | null, res: Message) => void) => void>;
    return new Promise((resolve, reject) => {
      c[method]!.call(c, request, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => (err !== null ? reject(err) : resolve(res)));
    });
  }

  stream(service: Service, method: string, metadata = this.metadata()): ClientDuplexStream<Message, Message> {
    const c = this.client(service) as unknown as Record<string, (md: Metadata) => ClientDuplexStream<Message, Message>>;
    return c[method]!.call(c, metadata);
  }

  /** A server-streaming call (Election.Observe). */
  serverStream(service: Service, method: string, request: Message, metadata = this.metadata()): import('@grpc/grpc-js').ClientReadableStream<Message> {
    const c = this.client(service) as unknown as Record<string, (req: Message, md: Metadata) => import('@grpc/grpc-js').ClientReadableStream<Message>>;
    return c[method]!.call(c, request, metadata);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** The gRPC error a call rejected with. */
export async function grpcError(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded; an error was expected');
}

export const b = (s: string): Buffer => Buffer.from(s);
