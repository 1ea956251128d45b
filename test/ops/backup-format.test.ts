// The backup envelope (src/server/backup-format.ts) against hostile bytes, and `raftkv snapshot
// save` against a hostile server: whatever arrives, a save either writes a backup that verifies or
// writes nothing and says why in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BackupFileError, encodeBackupHead, parseBackupHead, verifyBackup, type BackupHeader } from '../../src/server/backup-format.js';
import { freePorts, makeTempDir, removeTempDir, runMain } from '../cluster/harness.js';

const HEADER: BackupHeader = { clusterId: null, node: 'n1', index: 7, term: 2, snapshotBytes: 10, createdAt: '2026-12-04T00:00:00.000Z' };

function backupOf(header: BackupHeader, body: Buffer): Buffer {
  const head = encodeBackupHead(header);
  const sha = createHash('sha256').update(head).update(body).digest();
  return Buffer.concat([head, body, sha]);
}

test('the envelope: a header read from a stream waits for its bytes, and every malformed field is refused with its offset', () => {
  const whole = backupOf(HEADER, Buffer.alloc(10));
  assert.equal(parseBackupHead('f', whole.subarray(0, 5), null), 'more');
  assert.equal(parseBackupHead('f', whole.subarray(0, 20), null), 'more');
  const parsed = parseBackupHead('f', whole, whole.length);
  assert.notEqual(parsed, 'more');
  assert.deepEqual(parsed !== 'more' && parsed.header, HEADER);

  const refused = (buf: Buffer, size: number | null, pattern: RegExp, offset: number): void => {
    assert.throws(() => parseBackupHead('f.rkv', buf, size), (err: unknown) => err instanceof BackupFileError && pattern.test(err.message) && err.offset === offset && err.message.startsWith('f.rkv: '), pattern.source);
  };
  const withVersion = Buffer.from(whole);
  withVersion.writeUInt32LE(9, 8);
  refused(withVersion, null, /unsupported backup version 9/, 8);
  const hugeHeader = Buffer.from(whole);
  hugeHeader.writeUInt32LE(0xffffffff, 12);
  refused(hugeHeader, null, /header length 4294967295/, 12);
  const badJson = Buffer.from(whole);
  badJson[16] = 0x7b + 1;
  refused(badJson, null, /not JSON/, 16);
  const wrongTypes = Buffer.concat([encodeBackupHead({ ...HEADER, index: -1 } as BackupHeader)]);
  refused(wrongTypes, null, /lacks a field or has one of the wrong type/, 16);
  refused(Buffer.concat([whole, Buffer.from('extra')]), whole.length + 5, /5 bytes after the end/, whole.length);
  refused(whole.subarray(0, whole.length - 1), whole.length - 1, /truncated: the header promises/, whole.length - 1);
  refused(Buffer.alloc(3), 3, /truncated: 3 bytes/, 3);
  // The whole check: the SHA-256 first, then the snapshot file inside (here ten zero bytes: not one).
  assert.throws(() => verifyBackup('f.rkv', whole), /the snapshot inside is damaged.*offset \d+/);
  const flipped = Buffer.from(whole);
  flipped[whole.length - 40]! ^= 1;
  assert.throws(() => verifyBackup('f.rkv', flipped), /SHA-256 checksum mismatch/);
});

/** A server that answers GET /v1/snapshot with `reply`. */
async function hostile(reply: (res: import('node:http').ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const [port] = await freePorts(1);
  const server = createServer((_req, res) => reply(res));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${port}` };
}

test('snapshot save against a server that sends garbage, too few or too many bytes, or a wrong checksum: exit 1, one line, no file', async () => {
  const dir = makeTempDir('hostile-backup');
  const good = backupOf(HEADER, Buffer.alloc(10, 7));
  const badSha = Buffer.from(good);
  badSha[badSha.length - 1]! ^= 1;
  const cases: [string, (res: import('node:http').ServerResponse) => void, RegExp][] = [
    ['garbage', (res) => res.end('<html>surprise</html>, long enough to hold a preamble'), /did not send a raftkv backup: not a raftkv backup/],
    ['short', (res) => {
      res.writeHead(200, { 'content-length': String(good.length) });
      res.write(good.subarray(0, good.length - 20));
      setTimeout(() => res.destroy(), 50);
    }, /aborted|ended the backup|socket hang up|ECONNRESET/],
    ['long', (res) => res.end(Buffer.concat([good, Buffer.alloc(64)])), /announced \d+ bytes but the backup's header says \d+/],
    ['long chunked', (res) => {
      res.write(good);
      res.end(Buffer.alloc(64));
    }, /sent \d+ bytes, more than the \d+ the backup's header gives/],
    ['bad checksum', (res) => res.end(badSha), /fails its SHA-256 check/],
    ['error', (res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"INTERNAL","message":"disk on fire"}}');
    }, /500 INTERNAL disk on fire/],
  ];
  try {
    for (const [name, reply, pattern] of cases) {
      const { server, url } = await hostile(reply);
      try {
        const file = join(dir, `${name.replace(/ /g, '-')}.rkv`);
        const r = await runMain(['snapshot', 'save', file, '--endpoints', url, '--timeout-ms', '5000']);
        assert.equal(r.code, 1, `${name}: ${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
        assert.match(r.stderr, pattern, name);
        assert.equal(existsSync(file), false, `${name}: no file`);
        assert.deepEqual(readdirSync(dir), [], `${name}: no temporary file left`);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    }
    // And a well-formed answer is saved (the envelope alone is checked while saving).
    const { server, url } = await hostile((res) => res.end(good));
    try {
      const r = await runMain(['snapshot', 'save', join(dir, 'ok.rkv'), '--endpoints', url]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readdirSync(dir), ['ok.rkv']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  } finally {
    removeTempDir(dir);
  }
});
