// The demo/test PKI: a CA and a certificate it signs, usable by Node's TLS on both ends.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { hasOpenssl, makeCertificate, makeCertificateAuthority, readPem } from '../../src/security/certs.js';

test('a certificate signed by the generated CA passes mutual TLS on 127.0.0.1; keys are 0600', { skip: hasOpenssl() ? false : 'openssl is not installed (CI installs it)' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-certs-'));
  try {
    const ca = makeCertificateAuthority(join(dir, 'pki'));
    const server = makeCertificate(ca, join(dir, 'pki'), 'n1', { commonName: 'n1' });
    const client = makeCertificate(ca, join(dir, 'pki'), 'client', { commonName: 'client' });
    assert.equal(statSync(server.key).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'pki')).mode & 0o777, 0o700);
    const srv = tls.createServer({ cert: readPem(server.cert, 'cert'), key: readPem(server.key, 'key'), ca: readPem(ca.cert, 'ca'), requestCert: true, rejectUnauthorized: true }, (s) => {
      s.end(`hello ${(s.getPeerCertificate().subject as { CN?: string }).CN}`);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, cert: readPem(client.cert, 'cert'), key: readPem(client.key, 'key'), ca: readPem(ca.cert, 'ca') });
      let text = '';
      s.setEncoding('utf8').on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    assert.equal(answer, 'hello client');
    srv.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
