// The peer port's listening socket. It admits connections before any of our protocol runs:
//   - at most maxInboundConnections at once (Node's maxConnections: the extra ones are closed by
//     the server before any JavaScript sees them, and counted);
//   - with TLS, a mutual-TLS server that refuses, in the TLS layer and before any frame is read,
//     a client without a certificate signed by the cluster's CA;
//   - the handshake deadline starts when the TCP connection is accepted, so a TLS handshake
//     that stalls spends the same budget as a HELLO that never comes.
// A connection that passes (TCP accepted, TLS done if on) goes to `onAccepted` with what is
// left of its deadline; the InboundConnection takes it from there.
import net from 'node:net';
import tls from 'node:tls';
import type { InboundCounters } from './inbound-connection.js';
import type { LogLimiter } from './log-limiter.js';
import type { PeerAddress, TransportTlsOptions } from './types.js';

export interface ListenerSettings {
  readonly host: string;
  readonly port: number;
  readonly tls: TransportTlsOptions | undefined;
  readonly maxConnections: number;
  readonly handshakeTimeoutMs: number;
  readonly log: LogLimiter;
  readonly counters: InboundCounters;
  /** A connection ready for our HELLO (after TLS, if on); `remainingMs` of its handshake deadline. */
  readonly onAccepted: (socket: net.Socket, remainingMs: number) => void;
}

/** A TLS connection whose handshake is still running. */
interface Handshake {
  readonly raw: net.Socket;
  readonly acceptedAt: number;
  readonly timer: NodeJS.Timeout;
  isSecure: boolean;
  isTimedOut: boolean;
}

export class PeerListener {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Keyed by remote address and port, the one thing the raw and the TLS socket share publicly. */
  private readonly handshakes = new Map<string, Handshake>();

  constructor(private readonly settings: ListenerSettings) {}

  get openConnections(): number {
    return this.sockets.size;
  }

  /** Rejects only if the port cannot be bound. */
  start(): Promise<void> {
    const s = this.settings;
    const server =
      s.tls === undefined
        ? net.createServer()
        : tls.createServer({
            cert: s.tls.cert,
            key: s.tls.key,
            ca: s.tls.ca,
            requestCert: true,
            rejectUnauthorized: true,
            // Our own deadline fires first and counts as a timeout; Node's is only a backstop.
            handshakeTimeout: s.handshakeTimeoutMs + 1000,
          });
    server.maxConnections = s.maxConnections;
    server.on('drop', (data?: { remoteAddress?: string }) => {
      s.counters.rejected.limit++;
      s.log.log('limit', 'warn', 'refused a peer connection: too many open', { remote: data?.remoteAddress, limit: s.maxConnections });
    });
    server.on('connection', (raw: net.Socket) => this.onConnection(raw));
    if (server instanceof tls.Server) {
      server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));
      server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
        // Counted when the raw socket closes (once, whatever the path); this is only the why.
        s.log.log('tls', 'warn', 'peer TLS handshake failed', {
          remote: socket.remoteAddress,
          error: socket.authorizationError === undefined || socket.authorizationError === null ? err.code ?? err.message : String(socket.authorizationError),
        });
      });
    }
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server = null;
        reject(err);
      };
      server.once('error', onError);
      server.listen(s.port, s.host, () => {
        server.off('error', onError);
        server.on('error', (err) => s.log.log('listener', 'error', 'listener error', { error: err.message }));
        resolve();
      });
    });
  }

  address(): PeerAddress {
    const a = this.server?.address();
    if (a === null || a === undefined || typeof a === 'string') return { host: this.settings.host, port: this.settings.port };
    return { host: a.address, port: a.port };
  }

  /** Stops listening and destroys every connection, handshakes in progress included. */
  close(): Promise<void> {
    const server = this.server;
    for (const socket of this.sockets) socket.destroy();
    if (server === null) return Promise.resolve();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(raw: net.Socket): void {
    const s = this.settings;
    this.sockets.add(raw);
    raw.on('close', () => this.sockets.delete(raw));
    if (!(this.server instanceof tls.Server)) {
      s.onAccepted(raw, s.handshakeTimeoutMs);
      return;
    }
    const key = remoteKey(raw);
    if (key === null) {
      raw.destroy(); // reset before we saw it
      return;
    }
    const handshake: Handshake = {
      raw,
      acceptedAt: Date.now(),
      isSecure: false,
      isTimedOut: false,
      timer: setTimeout(() => {
        handshake.isTimedOut = true;
        s.counters.rejected.timeout++;
        s.log.log('timeout', 'error', 'closing a peer connection', { remote: raw.remoteAddress, reason: 'no TLS handshake within the deadline' });
        raw.destroy();
      }, s.handshakeTimeoutMs),
    };
    this.handshakes.set(key, handshake);
    raw.on('close', () => {
      clearTimeout(handshake.timer);
      if (this.handshakes.get(key) === handshake) this.handshakes.delete(key);
      // No certificate, an untrusted one, not TLS at all, or a hang-up mid-handshake: the
      // TLS layer turned it away before our protocol saw a byte.
      if (!handshake.isSecure && !handshake.isTimedOut) s.counters.rejected.tls++;
    });
  }

  private onSecure(socket: tls.TLSSocket): void {
    const key = remoteKey(socket);
    const handshake = key === null ? undefined : this.handshakes.get(key);
    if (handshake === undefined || handshake.isTimedOut) {
      socket.destroy();
      return;
    }
    clearTimeout(handshake.timer);
    handshake.isSecure = true;
    this.handshakes.delete(key!);
    this.settings.onAccepted(socket, handshake.acceptedAt + this.settings.handshakeTimeoutMs - Date.now());
  }
}

function remoteKey(socket: net.Socket): string | null {
  if (socket.remoteAddress === undefined || socket.remotePort === undefined) return null;
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
