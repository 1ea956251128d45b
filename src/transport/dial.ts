// Opening a connection to a peer, plain or TLS, for all three kinds of outbound stream (messages,
// snapshots, rpc). With TLS, the dialer presents this node's certificate and verifies the
// peer's against the cluster's CA AND against the host it dialed (Node's default identity check:
// an IP address must be in the certificate's IP SANs, a name in its DNS SANs), so an address in
// the peer list can only be answered by a holder of a key the CA signed for that address.
import net from 'node:net';
import tls from 'node:tls';
import type { PeerAddress, TransportTlsOptions } from './types.js';

export interface DialSettings {
  /** Built once per transport by `dialSettings`; parsing PEM on every dial would be waste. */
  readonly secureContext: tls.SecureContext | null;
  /** A dial failed in TLS (untrusted certificate either way, a peer that does not speak TLS). */
  readonly onTlsFailure: (err: NodeJS.ErrnoException) => void;
}

export interface Dialed {
  readonly socket: net.Socket;
  /** Write the HELLO on this event: only then does the peer read what we send. */
  readonly readyEvent: 'connect' | 'secureConnect';
}

export function dialSettings(options: TransportTlsOptions | undefined, onTlsFailure: (err: NodeJS.ErrnoException) => void): DialSettings {
  const secureContext = options === undefined ? null : tls.createSecureContext({ cert: options.cert, key: options.key, ca: options.ca });
  return { secureContext, onTlsFailure };
}

/** Starts a connection; errors arrive as the socket's 'error' event, never as a throw. */
export function dial(address: PeerAddress, settings: DialSettings, writableHighWaterMark?: number): Dialed {
  // Node's Socket passes stream options through, but @types/node does not declare them.
  const stream = writableHighWaterMark === undefined ? {} : { writableHighWaterMark };
  if (settings.secureContext === null) {
    const socket = net.connect({ host: address.host, port: address.port, ...stream } as net.TcpNetConnectOpts);
    socket.setNoDelay(true);
    return { socket, readyEvent: 'connect' };
  }
  const socket = tls.connect({
    host: address.host,
    port: address.port,
    secureContext: settings.secureContext,
    // Named hosts get SNI; an IP literal cannot be a server name (RFC 6066 §3).
    ...(net.isIP(address.host) === 0 ? { servername: address.host } : {}),
    ...stream,
  });
  socket.setNoDelay(true);
  let isTcpUp = false;
  let isSecure = false;
  socket.once('connect', () => (isTcpUp = true));
  socket.once('secureConnect', () => (isSecure = true));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (isTlsFailure(err, isTcpUp && !isSecure)) settings.onTlsFailure(err);
  });
  return { socket, readyEvent: 'secureConnect' };
}

/**
 * OpenSSL's and Node's TLS errors, or a certificate verification error (those carry the X.509
 * code, e.g. SELF_SIGNED_CERT_IN_CHAIN, and no syscall) raised during the TLS handshake. A
 * reset or a refused connection is a network failure, not a TLS one.
 */
function isTlsFailure(err: NodeJS.ErrnoException, isHandshaking: boolean): boolean {
  const code = err.code;
  if (code === undefined) return false;
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return true;
  return isHandshaking && err.syscall === undefined;
}
