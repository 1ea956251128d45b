// The fault harness's flags (src/faults/main.ts): a bad value is refused before anything runs (no
// namespace, no cluster), with a one-line message naming the flag and exit code 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/faults/main.js', import.meta.url));

test('faults: a bad --snapshot-entries (or other number) is refused with one line naming it, exit 2, nothing started', () => {
  const cases: readonly [readonly string[], RegExp][] = [
    [['--snapshot-entries', '5'], /^faults: --snapshot-entries must be a whole number from 10 to 100000000, not "5"$/],
    [['--snapshot-entries', 'abc'], /^faults: --snapshot-entries must be a whole number from 10 to 100000000, not "abc"$/],
    [['--snapshot-entries', '1e3'], /^faults: --snapshot-entries must be a whole number/],
    [['--snapshot-entries'], /^faults: Option '--snapshot-entries <value>' argument missing$/],
    [['--time', '-1'], /^faults: /],
  ];
  for (const [args, message] of cases) {
    const run = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr.split('\n')[0] ?? '', message, args.join(' '));
    assert.match(run.stderr, /^usage: npm run faults/m, 'the usage follows');
    assert.equal(run.stdout, '', 'no run began');
  }
});
