// docs/operations.md's command reference is the one the command table generates (run
// `npm run docs:cli` after changing a flag), so it lists every flag of every command, with the
// same defaults and descriptions as --help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands.js';
import { flagLabel, markdownReference } from '../../src/cli/help.js';
import { extractReference } from '../../src/cli/reference.js';

const DOC = readFileSync(fileURLToPath(new URL('../../../docs/operations.md', import.meta.url)), 'utf8');

test('docs/operations.md lists every command and every flag of every command', () => {
  const reference = extractReference(DOC);
  assert.ok(reference !== null, 'the reference markers are missing');
  const missing: string[] = [];
  for (const c of COMMANDS) {
    const section = reference.split(`### raftkv ${c.name}\n`)[1]?.split('\n### ')[0];
    if (section === undefined) {
      missing.push(`command ${c.name}`);
      continue;
    }
    for (const [name, def] of Object.entries(c.flags)) if (!section.includes(`\`${flagLabel(name, def).replace(/\|/g, '\\|')}\``)) missing.push(`${c.name} --${name}`);
  }
  assert.deepEqual(missing, [], 'run npm run docs:cli');
});

test('docs/operations.md carries exactly the generated reference (npm run docs:cli rewrites it)', () => {
  assert.equal(extractReference(DOC), markdownReference(COMMANDS).trim());
});
