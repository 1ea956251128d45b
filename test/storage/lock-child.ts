// Child process for dir-lock.test.ts. Prints `ready`, then for each `go` on stdin tries to take
// the data dir lock: prints `locked <holder JSON>` and holds it (until `release` or a kill), or
// `refused <message>` and waits for the next `go` (a process per attempt would make the race
// test mostly about starting Node). Run with no arguments it does nothing.
import { createInterface } from 'node:readline';
import { DataDirLockedError, acquireDataDirLock } from '../../src/storage/index.js';
import type { DataDirLock } from '../../src/storage/index.js';

async function main(dir: string, nodeId: string): Promise<void> {
  let lock: DataDirLock | null = null;
  const lines = createInterface({ input: process.stdin });
  process.stdout.write('ready\n');
  for await (const line of lines) {
    if (line === 'go') {
      try {
        lock = await acquireDataDirLock(dir, { nodeId });
        process.stdout.write(`locked ${JSON.stringify(lock.holder)}\n`);
      } catch (error) {
        if (!(error instanceof DataDirLockedError)) throw error;
        process.stdout.write(`refused ${error.message}\n`);
      }
    } else if (line === 'release') {
      await lock?.release();
      process.stdout.write('released\n');
      process.exit(0);
    }
  }
}

const [dir, nodeId] = process.argv.slice(2);
if (dir !== undefined) {
  main(dir, nodeId ?? 'child').catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(2);
  });
}
