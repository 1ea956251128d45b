// A throwaway PKI for the client's TLS tests, made once per test process with the demo PKI's
// openssl helpers: a CA, a node certificate for 127.0.0.1, a client certificate, and a second,
// unrelated CA whose certificate a client must not accept in place of the first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasOpenssl, makeCertificate, makeCertificateAuthority, readPem } from '../../src/security/certs.js';

export interface TestPki {
  readonly dir: string;
  readonly caPath: string;
  readonly ca: Buffer;
  readonly node: { readonly cert: Buffer; readonly key: Buffer };
  readonly client: { readonly cert: Buffer; readonly key: Buffer; readonly certPath: string; readonly keyPath: string };
  /** A CA that signed none of the above. */
  readonly otherCa: Buffer;
}

/** Why TLS tests are skipped here, or false when they can run. */
export const NO_OPENSSL: string | false = hasOpenssl() ? false : 'openssl is not installed (CI installs it)';

let made: TestPki | undefined;

export function testPki(): TestPki {
  if (made !== undefined) return made;
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-client-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCertificateAuthority(join(dir, 'pki'));
  const node = makeCertificate(ca, join(dir, 'pki'), 'n1', { commonName: 'n1' });
  const client = makeCertificate(ca, join(dir, 'pki'), 'client', { commonName: 'raftkv-cli' });
  const other = makeCertificateAuthority(join(dir, 'other'), 'other');
  made = {
    dir,
    caPath: ca.cert,
    ca: readPem(ca.cert, 'CA'),
    node: { cert: readPem(node.cert, 'cert'), key: readPem(node.key, 'key') },
    client: { cert: readPem(client.cert, 'cert'), key: readPem(client.key, 'key'), certPath: client.cert, keyPath: client.key },
    otherCa: readPem(other.cert, 'CA'),
  };
  return made;
}
