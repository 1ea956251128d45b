// Test and demo certificates: a private certificate authority and certificates it signs, made
// with the `openssl` command (Node can read X.509 but not issue it). `raftkv cluster --secure`
// and the TLS tests use these; production deployments bring their own PKI. Keys are written
// 0600 into a directory created 0700.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  /** Path of the PEM certificate. */
  readonly cert: string;
  /** Path of the PEM private key (mode 0600). */
  readonly key: string;
}

export interface CertificateOptions {
  /** Subject common name; also added as a DNS subject alternative name. */
  readonly commonName: string;
  /** @default ['localhost'] */
  readonly dnsNames?: readonly string[];
  /** @default ['127.0.0.1', '::1'] */
  readonly ipAddresses?: readonly string[];
  /** @default 825 */
  readonly days?: number;
}

/** The openssl binary answers; without it no certificate can be made here. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args[0]} failed${stderr ? `: ${stderr.split('\n')[0]}` : ''}`);
  }
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** A new certificate authority in `dir` (`<name>.crt`, `<name>.key`), or the one already there. */
export function makeCertificateAuthority(dir: string, name = 'ca', days = 3650): KeyPair {
  ensureDir(dir);
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  if (existsSync(pair.cert) && existsSync(pair.key)) return pair;
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pair.key, '-out', pair.cert, '-days', String(days), '-subj', `/CN=raftkv ${name}`],
    dir,
  );
  chmodSync(pair.key, 0o600);
  return pair;
}

/**
 * A certificate signed by `ca` for both TLS roles (server and client), so one pair serves a
 * node's listening side and its dialing side. Written as `<file>.crt` / `<file>.key` in `dir`.
 */
export function makeCertificate(ca: KeyPair, dir: string, file: string, options: CertificateOptions): KeyPair {
  ensureDir(dir);
  const pair = { cert: join(dir, `${file}.crt`), key: join(dir, `${file}.key`) };
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  const dns = [options.commonName, ...(options.dnsNames ?? ['localhost'])];
  const ips = options.ipAddresses ?? ['127.0.0.1', '::1'];
  const san = [...new Set(dns)].map((d) => `DNS:${d}`).concat(ips.map((ip) => `IP:${ip}`)).join(',');
  writeFileSync(
    ext,
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
    { mode: 0o600 },
  );
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pair.key, '-out', csr, '-subj', `/CN=${options.commonName}`], dir);
  chmodSync(pair.key, 0o600);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', pair.cert, '-days', String(options.days ?? 825), '-extfile', ext],
    dir,
  );
  return pair;
}

/** Reads a PEM file for a TLS option; the error names the file. */
export function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
