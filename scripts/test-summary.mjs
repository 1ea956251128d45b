// A node:test reporter that prints nothing until the run ends, then every failed test again: its
// file, its name within its suite, and its error. CI keeps only the tail of a long TAP log, so a
// failure in the middle of the run would otherwise be invisible there.
//   node --test --test-reporter=tap --test-reporter-destination=stdout \
//        --test-reporter=./scripts/test-summary.mjs --test-reporter-destination=stdout ...
import { inspect } from 'node:util';

const MAX_LINES = 60;

function describe(error) {
  // node:test wraps what the test threw: the cause is the assertion or the error itself.
  const thrown = error && typeof error === 'object' && 'cause' in error && error.cause !== undefined
    ? error.cause
    : error;
  const text = inspect(thrown, { depth: 4, breakLength: 100 });
  // Frames inside node itself say nothing about the test.
  const lines = text.split('\n').filter((line) => !/^\s+at .*\((node:internal|node:async_hooks)[^)]*\)$/.test(line));
  return lines.length <= MAX_LINES
    ? lines
    : [...lines.slice(0, MAX_LINES), `... ${lines.length - MAX_LINES} more lines`];
}

export default async function* summary(source) {
  const failures = [];
  // The names of the suites a test sits in, by nesting level, as their starts arrive.
  const open = new Map();
  for await (const event of source) {
    if (event.type === 'test:start') {
      open.set(`${event.data.file ?? ''}:${event.data.nesting}`, event.data.name);
    } else if (event.type === 'test:fail') {
      const { name, nesting, file, details } = event.data;
      // A suite fails when a test in it fails: report only what failed itself.
      if (details?.error?.failureType === 'subtestsFailed') continue;
      const path = [];
      for (let level = 0; level < nesting; level++) {
        const parent = open.get(`${file ?? ''}:${level}`);
        if (parent !== undefined) path.push(parent);
      }
      path.push(name);
      failures.push({ file: file ?? '(unknown file)', path: path.join(' > '), error: details?.error });
    }
  }
  if (failures.length === 0) {
    yield '# summary: no test failed\n';
    return;
  }
  let out = `# summary: ${failures.length} failed test${failures.length === 1 ? '' : 's'}\n`;
  for (const failure of failures) {
    out += `# FAILED ${failure.file}\n#   ${failure.path}\n`;
    for (const line of describe(failure.error)) out += `#     ${line}\n`;
  }
  yield out;
}
