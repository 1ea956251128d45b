// Small file-system helpers for durability. On Linux a new or renamed file's directory entry is
// durable only once the directory itself is fsynced (the file's own fsync does not cover it).
import { open } from 'node:fs/promises';

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
