// npm run docs:cli — rewrites the CLI reference in docs/operations.md (between its markers) from
// the command table (src/cli/commands.ts), so the doc lists exactly the flags the parser takes.
// test/cli/reference.test.ts fails when the doc and the table differ. Run after `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { COMMANDS } = await import(new URL('dist/src/cli/commands.js', root).href);
const { markdownReference } = await import(new URL('dist/src/cli/help.js', root).href);
const { replaceReference } = await import(new URL('dist/src/cli/reference.js', root).href);
const path = new URL('docs/operations.md', root);
const before = readFileSync(path, 'utf8');
const after = replaceReference(before, markdownReference(COMMANDS));
if (after === before) console.log('docs/operations.md: the CLI reference is up to date');
else {
  writeFileSync(path, after);
  console.log('docs/operations.md: CLI reference rewritten');
}
