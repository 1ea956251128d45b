// Running `ip` and friends: async for the run, sync for cleanup on exit paths (an 'exit'
// handler cannot wait for promises).
import { execFile, execFileSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command} failed: ${stderr.trim()}`);
    this.name = 'CommandError';
  }
}

/** Runs `file args` (bounded to 10 s); resolves with stdout, rejects with CommandError. */
export function run(file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new CommandError(`${file} ${args.join(' ')}`, stderr || err.message));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Like run(), synchronously; returns null instead of throwing. */
export function runSync(file: string, args: readonly string[]): string | null {
  try {
    return execFileSync(file, [...args], { timeout: 10_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return null;
  }
}
