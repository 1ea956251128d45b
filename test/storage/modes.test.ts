// Data dir 0700, files 0600, whatever the umask (issue 9, "Operational safety"): under a umask of
// 0 (which would leave files world-writable) and one of 0277 (which would leave them unwritable),
// every directory and file FileStorage creates is private; an existing data dir with wider modes
// is tightened at open, with one warning; writeFileAtomic writes the server's own files the same
// way and leaves the old content in place when it fails. A data dir another user owns is used
// with a warning: only its owner may chmod it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileStorage, writeFileAtomic } from '../../src/storage/index.js';
import { range, snapshotAt } from './conformance.js';
import { RecordingLogger, TempDirs } from './helpers.js';

const temp = new TempDirs();
after(() => temp.removeAll());

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
}

interface Mode {
  readonly path: string;
  readonly mode: string;
  readonly isDirectory: boolean;
}

/** `dir`, its folders and the files in them, with their modes. */
function modes(dir: string): Mode[] {
  const out: Mode[] = [{ path: '.', mode: modeOf(dir), isDirectory: true }];
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, sub.name);
    out.push({ path: sub.name, mode: modeOf(path), isDirectory: sub.isDirectory() });
    if (!sub.isDirectory()) continue;
    for (const name of readdirSync(path)) out.push({ path: `${sub.name}/${name}`, mode: modeOf(join(path, name)), isDirectory: false });
  }
  return out;
}

async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(previous);
  }
}

for (const mask of [0, 0o277]) {
  test(`FileStorage creates directories 0700 and files 0600 under umask ${mask.toString(8).padStart(4, '0')}`, async () => {
    const dir = join(temp.make(), 'data');
    const logger = new RecordingLogger();
    await withUmask(mask, async () => {
      const storage = await FileStorage.open(dir, { segmentBytes: 2048, logger });
      for (let i = 1; i <= 60; i += 10) {
        storage.append(range(i, i + 9, 1, 100));
        await storage.sync();
      }
      await storage.saveSnapshot(snapshotAt(30, 1));
      // Past half a segment: its successor is prepared (and close() waits for it).
      storage.append(range(61, 70, 1, 100));
      await storage.sync();
      await storage.close();
    });
    const all = modes(dir);
    assert.ok(all.some((m) => m.path === 'wal/next-segment.wal.tmp'), 'the prepared segment is among them');
    assert.ok(all.filter((m) => m.path.startsWith('wal/')).length >= 3, 'several segments');
    assert.ok(all.some((m) => m.path.startsWith('snap/')), 'a snapshot');
    for (const m of all) assert.equal(m.mode, m.isDirectory ? '0700' : '0600', m.path);
    assert.deepEqual(logger.warnings, [], 'nothing to warn about in a data dir it created itself');
  });
}

test('FileStorage tightens an existing data dir with wider modes at open, with one warning', async () => {
  const dir = join(temp.make(), 'data');
  await withUmask(0o022, async () => {
    const storage = await FileStorage.open(dir, { segmentBytes: 2048, logger: new RecordingLogger() });
    storage.append(range(1, 30, 1, 100));
    await storage.sync();
    await storage.saveSnapshot(snapshotAt(20, 1));
    await storage.close();
  });
  // As an older raftkv (or a careless copy) would have left it.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'wal'), 0o775);
  for (const name of readdirSync(join(dir, 'wal'))) chmodSync(join(dir, 'wal', name), 0o644);
  for (const name of readdirSync(join(dir, 'snap'))) chmodSync(join(dir, 'snap', name), 0o666);

  const logger = new RecordingLogger();
  const storage = await FileStorage.open(dir, { segmentBytes: 2048, logger });
  assert.equal((await storage.load()).entries.length, 10, 'the data is untouched');
  await storage.close();
  for (const m of modes(dir)) assert.equal(m.mode, m.isDirectory ? '0700' : '0600', m.path);
  assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'));
  assert.match(logger.warnings[0]!, /set \d+ mode\(s\) to 0700 \(directories\) and 0600 \(files\)/);

  const again = new RecordingLogger();
  await (await FileStorage.open(dir, { segmentBytes: 2048, logger: again })).close();
  assert.deepEqual(again.warnings, [], 'already private: no warning');
});

test('writeFileAtomic writes a private file atomically under umask 0, and leaves the old one when it fails', async () => {
  const dir = temp.make();
  const path = join(dir, 'cluster.json');
  await withUmask(0, async () => {
    await writeFileAtomic(path, '{"v":1}\n');
    assert.equal(modeOf(path), '0600');
    writeFileSync(join(dir, 'other'), 'x');
    chmodSync(path, 0o644);
    await writeFileAtomic(path, new TextEncoder().encode('{"v":2}\n'));
  });
  assert.equal(readFileSync(path, 'utf8'), '{"v":2}\n');
  assert.equal(modeOf(path), '0600', 'a replaced file is private too');
  // A rename onto a directory fails: the temporary file goes, the target stays as it was.
  const blocked = join(dir, 'blocked');
  mkdirSync(join(blocked, 'inside'), { recursive: true });
  await assert.rejects(writeFileAtomic(blocked, 'nope'));
  assert.ok(statSync(blocked).isDirectory());
  assert.deepEqual(readdirSync(dir).sort(), ['blocked', 'cluster.json', 'other'], 'no temporary file left behind');
});

test('a data dir another user owns is used with a warning, not refused, when it cannot be made private', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to run a child as another user (nobody)');
    return;
  }
  const dir = join(temp.make(), 'shared');
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  chmodSync(join(dir, '..'), 0o755);
  const storageModule = new URL('../../src/storage/index.js', import.meta.url).href;
  const script = `
    const { FileStorage } = await import(${JSON.stringify(storageModule)});
    const warnings = [];
    const s = await FileStorage.open(${JSON.stringify(dir)}, { segmentBytes: 2048, logger: { warn: (m) => warnings.push(m) } });
    s.append([{ index: 1, term: 1, type: 'normal', data: new Uint8Array(3) }]);
    await s.sync();
    await s.close();
    process.stdout.write(JSON.stringify(warnings));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  const warnings = JSON.parse(out) as string[];
  assert.equal(warnings.length, 1, out);
  assert.match(warnings[0]!, /cannot make 1 path\(s\) private, this user does not own them/);
  assert.equal(modeOf(dir), '0777', 'left to its owner');
  assert.equal(modeOf(join(dir, 'wal')), '0700', 'what the storage created is private');
});
