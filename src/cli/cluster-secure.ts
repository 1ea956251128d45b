// `raftkv cluster --secure`: the local demo with the defences of API.md "Security" switched on. It
// makes its own CA and a certificate per node (in <dir>/pki/, via openssl), and an auth file with
// two bearer tokens (<dir>/auth.json, mode 0600), reusing all of them across runs so the commands
// it prints keep working. Everything here is pure or touches only <dir>; cluster.ts starts nodes.
import { X509Certificate, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasOpenssl, makeCertificate, makeCertificateAuthority, type KeyPair } from '../security/certs.js';

/** The files and tokens of a secure demo cluster. */
export interface SecureFiles {
  /** The CA certificate every node and client trusts. */
  readonly caPath: string;
  /** Each node's certificate, used for its client port and for mutual TLS with its peers. */
  readonly nodeCerts: ReadonlyMap<string, KeyPair>;
  readonly authFile: string;
  /** Token of the `admin` principal: every key, membership, leader transfer, maintenance. */
  readonly adminToken: string;
  /** Token of the `app` principal: read and write every key. */
  readonly appToken: string;
}

export interface SecureDeps {
  readonly hasOpenssl: () => boolean;
  readonly randomToken: () => string;
}

const DEFAULT_DEPS: SecureDeps = {
  hasOpenssl,
  // 32 random bytes: as strong as the key of a TLS session. Hex, so a token never starts with
  // '-' (base64url can), which a pasted `--token TOKEN` would read as another flag.
  randomToken: () => randomBytes(32).toString('hex'),
};

/** A node certificate is made again when it expires sooner than this. */
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;

export class SecureSetupError extends Error {}

/**
 * Makes (or reuses) `dir`, the CA, one certificate per node id, and the auth file. Throws a
 * SecureSetupError with one line when openssl is missing (before writing anything) or fails.
 */
export function prepareSecureFiles(dir: string, ids: readonly string[], deps: SecureDeps = DEFAULT_DEPS): SecureFiles {
  if (!deps.hasOpenssl()) {
    throw new SecureSetupError('cluster --secure makes its certificates with the openssl command, which is not installed (or not on PATH); install openssl, or run without --secure');
  }
  // The demo dir holds the tokens and the CA's key: when we make it, only its owner may look in.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pki = join(dir, 'pki');
  let ca: KeyPair;
  const nodeCerts = new Map<string, KeyPair>();
  try {
    ca = makeCertificateAuthority(pki);
    const caCert = new X509Certificate(readFileSync(ca.cert));
    for (const id of ids) {
      const pair = { cert: join(pki, `${id}.crt`), key: join(pki, `${id}.key`) };
      nodeCerts.set(id, isUsable(pair, caCert) ? pair : makeCertificate(ca, pki, id, { commonName: id }));
    }
  } catch (err) {
    throw new SecureSetupError(`cluster --secure could not make its certificates in ${pki}: ${oneLine(err)}`);
  }
  const authFile = join(dir, 'auth.json');
  const { adminToken, appToken } = loadOrCreateAuthFile(authFile, deps.randomToken);
  return { caPath: ca.cert, nodeCerts, authFile, adminToken, appToken };
}

/** A certificate from an earlier run is kept while the current CA signed it and it has life left. */
function isUsable(pair: KeyPair, ca: X509Certificate): boolean {
  if (!existsSync(pair.cert) || !existsSync(pair.key)) return false;
  try {
    const cert = new X509Certificate(readFileSync(pair.cert));
    return cert.checkIssued(ca) && cert.verify(ca.publicKey) && Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

/** The auth file's JSON (API.md "Security", `--auth-file`): an admin and a readwrite principal. */
export function authFileJson(adminToken: string, appToken: string): string {
  const file = {
    principals: [
      { name: 'admin', token: adminToken, permissions: [{ access: 'admin' }] },
      // The empty prefix is a prefix of every key.
      { name: 'app', token: appToken, permissions: [{ access: 'readwrite', prefix: '' }] },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

interface Principal {
  readonly name?: unknown;
  readonly token?: unknown;
  readonly permissions?: readonly { readonly access?: unknown; readonly prefix?: unknown }[];
}

/**
 * The tokens in `path`, writing a new file (0600, whole or not at all) when there is none. A file
 * someone edited is used as long as it still has an admin and a readwrite-everything principal.
 */
export function loadOrCreateAuthFile(path: string, randomToken: () => string): { adminToken: string; appToken: string } {
  if (existsSync(path)) {
    let principals: readonly Principal[] = [];
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as { principals?: unknown };
      if (Array.isArray(parsed.principals)) principals = parsed.principals as Principal[];
    } catch (err) {
      throw new SecureSetupError(`${path} is not valid JSON (${oneLine(err)}); fix it, or delete it to make new tokens`);
    }
    const tokenOf = (holds: (p: Principal) => boolean): string | undefined => {
      const found = principals.find((p) => typeof p.token === 'string' && Array.isArray(p.permissions) && holds(p));
      return found?.token as string | undefined;
    };
    const adminToken = tokenOf((p) => p.permissions!.some((x) => x.access === 'admin'));
    const appToken = tokenOf((p) => p.permissions!.some((x) => x.access === 'readwrite' && (x.prefix === undefined || x.prefix === '')));
    if (adminToken === undefined || appToken === undefined) {
      throw new SecureSetupError(`${path} has no ${adminToken === undefined ? 'admin' : 'readwrite-every-key'} principal; fix it, or delete it to make new tokens`);
    }
    chmodSync(path, 0o600);
    return { adminToken, appToken };
  }
  const adminToken = randomToken();
  const appToken = randomToken();
  // Written 0600 from the first byte and renamed into place, so no reader ever sees it open or half-written.
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, authFileJson(adminToken, appToken), { mode: 0o600 });
  renameSync(temp, path);
  return { adminToken, appToken };
}

/** The serve flags that turn on TLS on both ports and authentication (API.md "Security"). */
export function secureServeArgs(files: SecureFiles, id: string): string[] {
  const pair = files.nodeCerts.get(id);
  if (pair === undefined) throw new Error(`no certificate was made for ${id}`);
  return [
    '--cert-file', pair.cert, '--key-file', pair.key, '--trusted-ca-file', files.caPath,
    '--peer-cert-file', pair.cert, '--peer-key-file', pair.key, '--peer-trusted-ca-file', files.caPath,
    '--auth-file', files.authFile,
  ];
}

/** Ready-to-paste commands for a secure cluster: curl and raftkv with the CA and the tokens. */
export function secureHints(files: SecureFiles, endpoints: readonly string[], mainPath: string): string {
  const raftkv = `node ${shellQuote(mainPath)}`;
  const ca = shellQuote(files.caPath);
  return [
    `TLS on: CA ${files.caPath}; tokens in ${files.authFile} ("admin": everything; "app": read and write every key)`,
    'try:',
    `  curl --cacert ${ca} -H "Authorization: Bearer ${files.adminToken}" ${endpoints[0]}/v1/status`,
    `  ${raftkv} status --endpoints ${endpoints.join(',')} --cacert ${ca} --token ${files.adminToken}`,
    `  export RAFTKV_ENDPOINTS=${endpoints.join(',')} RAFTKV_CACERT=${ca} RAFTKV_TOKEN=${files.appToken}`,
    `  ${raftkv} put hello world && ${raftkv} get hello`,
    '',
  ].join('\n');
}

/** `s` as one word for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}
