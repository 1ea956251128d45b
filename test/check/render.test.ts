// What a person sees of a violation: the window of ops, the text rendering and the HTML timeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, formatCheckResult, registerModel, renderTimelineHtml, renderViolationText, type Violation, type RegisterInput, type RegisterOutput } from '../../src/check/index.js';
import { read, timedOutWrite, write, type RegisterOp } from './ops.js';

function violationOf(history: RegisterOp[]): Violation<RegisterInput, RegisterOutput> {
  const result = checkHistory(registerModel, history);
  assert.ok(result.outcome === 'violation', `expected a violation, got ${result.outcome}`);
  return result.violation;
}

// A long sequential run, then a stale read: the window must cut away the early history.
function staleReadHistory(): RegisterOp[] {
  const history: RegisterOp[] = [];
  for (let i = 0; i < 20; i++) history.push(write(1, i * 10, i * 10 + 5, i));
  history.push(write(2, 200, 210, 'new'), read(3, 205, 215, 'new'), timedOutWrite(4, 212, null, 'maybe'), read(3, 220, 230, 19));
  return history;
}

test('the window holds the stuck op, the ops pending with it and the end of the prefix', () => {
  const v = violationOf(staleReadHistory());
  assert.equal(v.stuck, 23);
  assert.equal(v.keyOpCount, 24);
  assert.equal(v.prefix.length, 22);
  assert.deepEqual(
    v.window.map((w) => [w.index, w.role, w.order]),
    [
      [18, 'linearized', 19],
      [19, 'linearized', 20],
      [20, 'linearized', 21],
      [21, 'linearized', 22],
      [22, 'pending', null],
      [23, 'stuck', null],
    ],
  );
  assert.equal(v.stateAfterPrefix, 'new');
});

test('the text rendering has one line per op: process, [call, ret], op, result', () => {
  const text = renderViolationText(violationOf(staleReadHistory()));
  assert.equal(
    text,
    [
      'not linearizable: key "*" (register model, 24 ops)',
      'longest linearizable prefix: 22 ops; state after it: new',
      'stuck at: process 3 read -> 19 [220, 230]',
      'process  [call, ret]  op           result',
      '1        [180, 185]   write 18     ok      #19 in prefix',
      '1        [190, 195]   write 19     ok      #20 in prefix',
      '2        [200, 210]   write new    ok      #21 in prefix',
      '3        [205, 215]   read         new     #22 in prefix',
      '4        [212, ?]     write maybe  ?       pending: cannot go next either (outcome unknown)',
      '3        [220, 230]   read         19      STUCK: cannot be linearized before it returned',
    ].join('\n'),
  );
});

test('formatCheckResult summarises every outcome', () => {
  assert.match(formatCheckResult(checkHistory(registerModel, [write(1, 0, 1, 1)])), /^linearizable: 1 ops over 1 keys/);
  assert.match(formatCheckResult(checkHistory(registerModel, staleReadHistory())), /^violation on 1 key\(s\): "\*".*\nnot linearizable/);
  const hard: RegisterOp[] = [];
  for (let i = 0; i < 16; i++) hard.push(write(i, 0, 100, i));
  hard.push(read(99, 50, 200, 'never'));
  assert.match(formatCheckResult(checkHistory(registerModel, hard, { maxSteps: 5_000 })), /^unknown: the search budget ran out \(max-steps\)/);
});

test('the HTML timeline is a self-contained page: one lane per process, the stuck op in red', () => {
  const v = violationOf(staleReadHistory());
  const html = renderTimelineHtml(v);
  assert.match(html, /^<!doctype html>/);
  assert.ok(html.includes('<svg'));
  assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(html), 'no scripts, no external assets');
  for (const p of ['1', '2', '3', '4']) assert.ok(html.includes(`>process ${p}</text>`), `lane for process ${p}`);
  assert.equal(html.match(/fill="#d62828" stroke="#7a0000"/g)?.length, 1, 'exactly one stuck bar');
  assert.ok(html.includes('stroke-dasharray="5 3"'), 'the unknown write is dashed');
  assert.ok(html.includes('search stuck here'));

  const dir = mkdtempSync(join(tmpdir(), 'raftkv-check-'));
  try {
    const file = join(dir, 'violation.html');
    writeFileSync(file, html);
    assert.equal(readFileSync(file, 'utf8'), html);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the HTML timeline escapes values and process names', () => {
  const evil = '<script>alert(1)</script>';
  const html = renderTimelineHtml(violationOf([write(1, 0, 1, evil), read(2, 2, 3, 'x')]));
  assert.ok(!html.includes('<script>'));
  assert.ok(html.includes('&#60;script&#62;'));
});

test('a process whose ops overlap gets a second row in its lane', () => {
  // Process 1 times out on a write, then issues another op while the first may still land.
  const html = renderTimelineHtml(violationOf([timedOutWrite(1, 0, 5, 'a'), write(1, 6, 8, 'b'), read(2, 10, 12, 'c')]));
  assert.ok(html.includes('height="80" fill="#f7f7f7"'), 'lane of process 1 spans two rows');
});
