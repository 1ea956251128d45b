// What a CLI run printed, and the check that a bad flag or command was refused the way every
// raftkv command refuses one: exit 2, nothing on stdout, one line on stderr naming the problem.
import assert from 'node:assert/strict';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function assertUsage(r: Run, mentions: string | RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line, got: ${JSON.stringify(r.stderr)}`);
  if (typeof mentions === 'string') assert.ok(lines[0]!.includes(mentions), `"${lines[0]}" should name ${mentions}`);
  else assert.match(lines[0]!, mentions);
}
