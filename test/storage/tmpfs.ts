// A real, small file system for the full-disk tests: a tmpfs of a few MiB mounted for one test.
// Mounting needs root (CAP_SYS_ADMIN); without it the test is skipped with a message that says
// so, never silently. Also a filler that takes all free space and gives it back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, unlinkSync, writeSync, ftruncateSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { FileStorage } from '../../src/storage/index.js';
import { range } from './conformance.js';
import { RecordingLogger } from './helpers.js';

export interface Tmpfs {
  readonly dir: string;
  /** Unmounts and removes the mount point; safe to call twice. */
  unmount(): void;
}

/** Mounts a tmpfs of `bytes`, or returns why it cannot (the test then skips with that reason). */
export function mountTmpfs(bytes: number): Tmpfs | string {
  if (process.platform !== 'linux') return `needs Linux to mount a tmpfs (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs (mount -t tmpfs); run the tests as root to check the full-disk path';
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return `mount -t tmpfs failed (${String((error as { stderr?: unknown }).stderr ?? error).trim()}): no CAP_SYS_ADMIN here?`;
  }
  let mounted = true;
  return {
    dir,
    unmount(): void {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        // Busy: a failed test left a file open. Detach it anyway; the kernel frees it on close.
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A file that takes the free space of a file system, to fill it and to give back. */
export class Filler {
  private readonly path: string;
  private fd: number | null;

  constructor(dir: string) {
    this.path = join(dir, 'filler');
    this.fd = openSync(this.path, 'w');
  }

  /** Writes until the file system is full; returns the filler's size. */
  fill(): number {
    const chunk = Buffer.alloc(16 * 1024, 1);
    for (;;) {
      try {
        const written = writeSync(this.fd!, chunk);
        if (written < chunk.length) break;
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ENOSPC') break;
        throw error;
      }
    }
    return fstatSync(this.fd!).size;
  }

  /** Gives back `bytes` of what it holds (the file system then has about that much free). */
  giveBack(bytes: number): void {
    const size = fstatSync(this.fd!).size;
    ftruncateSync(this.fd!, Math.max(0, size - bytes));
  }

  /** Deletes the filler: all its space is free again. */
  remove(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    unlinkSync(this.path);
  }
}

/**
 * A FileStorage on a tmpfs of 1 MiB (64 KiB segments, 20 entries of 1 KiB synced) with the rest
 * filled but 96 KiB: room in the active segment, none for a snapshot of 200 KiB. `body` gets it
 * with the filler and the data dir; it is abandoned (if `body` did not close it), the filler
 * removed and the tmpfs unmounted however `body` ends. Skips the test where no tmpfs can be
 * mounted (mountTmpfs).
 */
export async function withFullDisk(t: TestContext, body: (storage: FileStorage, filler: Filler, dir: string) => Promise<void>): Promise<void> {
  const fs = mountTmpfs(1024 * 1024);
  if (typeof fs === 'string') {
    t.skip(fs);
    return;
  }
  const dir = join(fs.dir, 'data');
  const filler = new Filler(fs.dir);
  let storage: FileStorage | null = null;
  try {
    storage = await FileStorage.open(dir, { segmentBytes: 64 * 1024, logger: new RecordingLogger() });
    storage.append(range(1, 20, 1, 1024));
    await storage.sync();
    filler.fill();
    filler.giveBack(96 * 1024);
    await body(storage, filler, dir);
  } finally {
    await storage?.abandon().catch(() => undefined);
    filler.remove();
    fs.unmount();
  }
}
