// The PKI and credentials of a secure harness cluster (the process tests' `secure: true`, the
// fault suite's `--secure`): a CA made for this cluster only, one certificate per node that
// names the address it really serves (its namespace address in netns mode, loopback otherwise),
// and an auth file with one admin principal. Every node gets HTTPS on its client port, mutual
// TLS on its peer port and --auth-file; a joiner also presents the admin token. The harness
// trusts the CA and presents the token. Everything lives in `dir`, removed with the cluster.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { hasOpenssl, makeCertificate, makeCertificateAuthority, type KeyPair } from '../security/certs.js';
import { exchange, ExchangeError, type ClientSecurity } from './http.js';

/** The loopback names every certificate carries besides the node's own address. */
const LOOPBACK = ['127.0.0.1', '::1'];

export class ClusterSecurity {
  readonly ca: KeyPair;
  /**
   * Admin, not readwrite: the harness adds and removes members and transfers leadership, and one
   * token for everything keeps workloads and membership changes on the same footing. Hex, so it
   * never starts with '-' on a command line.
   */
  readonly adminToken = randomBytes(32).toString('hex');
  readonly authFile: string;
  /** What every harness request carries: the CA to verify nodes against, and the admin token. */
  readonly client: ClientSecurity;
  private readonly certificates = new Map<string, KeyPair>();

  /** Makes the CA and the auth file in `dir` (created 0700); throws when openssl is missing. */
  constructor(readonly dir: string) {
    if (!hasOpenssl()) throw new Error('a secure cluster makes its certificates with the openssl command, which is not installed (or not on PATH)');
    this.ca = makeCertificateAuthority(dir);
    this.authFile = join(dir, 'auth.json');
    writeFileSync(this.authFile, JSON.stringify({ principals: [{ name: 'admin', token: this.adminToken, permissions: [{ access: 'admin' }] }] }), { mode: 0o600 });
    this.client = { ca: readFileSync(this.ca.cert), token: this.adminToken };
  }

  /**
   * Node `id`'s key pair, made on first use and the same for every restart. It names `host` as
   * well as loopback: peers dial IP literals and verify the IP SAN (no SNI for an IP), and so does
   * the harness. Ids are never reused for another address within one cluster.
   */
  certificate(id: string, host = LOOPBACK[0]!): KeyPair {
    let pair = this.certificates.get(id);
    if (pair === undefined) {
      pair = makeCertificate(this.ca, this.dir, id, { commonName: id, ipAddresses: [...new Set([host, ...LOOPBACK])] });
      this.certificates.set(id, pair);
    }
    return pair;
  }

  /** The TLS and auth flags of `serve` for node `id` at `host` (peer and client port share it). */
  serveFlags(id: string, host?: string): string[] {
    const pair = this.certificate(id, host);
    return [
      '--cert-file', pair.cert, '--key-file', pair.key,
      '--peer-cert-file', pair.cert, '--peer-key-file', pair.key, '--peer-trusted-ca-file', this.ca.cert,
      '--auth-file', this.authFile,
    ];
  }

  /** What a `--join` node adds: the admin token it presents to the cluster it asks to join. */
  joinFlags(): string[] {
    return ['--join-token', this.adminToken];
  }

  /**
   * What makes `node` less than secure, or null: proof that it runs with TLS and auth, not
   * merely that it was started with the flags. Its client port must refuse plain http and answer
   * 401 to a wrong token over https; its peer port must complete a TLS handshake with a
   * certificate of this CA (for the address it was dialed at) and then drop a client that shows
   * no certificate of its own. A secure run whose nodes were not would be a plain run reported
   * as a secure one.
   */
  async insecurity(node: { readonly id: string; readonly url: string; readonly clientAddr: string; readonly peerAddr: string }): Promise<string | null> {
    const plain = await exchange(`http://${node.clientAddr}`, '/v1/status', { timeoutMs: 2000 }).catch((err: unknown) => err as ExchangeError);
    if (!(plain instanceof ExchangeError)) return `${node.id} answers plain http on its client port (${plain.status})`;
    const stranger = await exchange(node.url, '/v1/status', { timeoutMs: 2000, security: this.client, headers: { authorization: 'Bearer not-the-token' } }).catch((err: unknown) => err as Error);
    if (stranger instanceof Error) return `${node.id}: https with the cluster's CA failed: ${stranger.message}`;
    if (stranger.status !== 401) return `${node.id} answers ${stranger.status}, not 401, to a wrong token`;
    return peerInsecurity(node.id, node.peerAddr, this.client.ca);
  }
}

/** See ClusterSecurity.insecurity: the peer port's half. */
function peerInsecurity(id: string, peerAddr: string, ca: Buffer): Promise<string | null> {
  const [host, port] = peerAddr.split(':') as [string, string];
  return new Promise((resolve) => {
    let isVerified = false;
    let isRefused = false;
    const socket = tlsConnect({ host, port: Number(port), ca });
    const finish = (problem: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => finish(isVerified ? `${id}'s peer port keeps a TLS client without a certificate for 2 s` : `${id}'s peer port: no TLS handshake within 2 s`), 2000);
    socket.once('secureConnect', () => {
      isVerified = socket.authorized;
    });
    // TLS 1.3 (Node's default on both sides): the client has verified the server before the
    // server checks the client's certificate, so the refusal comes after secureConnect, as an
    // alert. A quiet close instead would be some other timeout, not mutual TLS at work.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!isVerified) finish(`${id}'s peer port does not complete TLS with a certificate of the cluster's CA: ${err.message}`);
      else if (err.code?.startsWith('ERR_SSL_') === true) isRefused = true;
    });
    socket.once('close', () => {
      if (!isVerified) finish(`${id}'s peer port closed before a TLS handshake`);
      else finish(isRefused ? null : `${id}'s peer port closed a TLS client without a certificate, but not with a TLS alert`);
    });
  });
}
