// Plain-text views of a check: one summary line for any result, and for a violation the window
// of the failing key, one line per op (process, [call, ret], op, result, role).
import type { CheckResult, HistoryOp, Violation, WindowOp } from './types.js';

/** `[call, ret]`; `ret?` when the client gave up at that time, `?` when it never returned. */
export function formatInterval<I, O>(op: HistoryOp<I, O>, isUnknownOutcome: boolean): string {
  const ret = op.ret === null || op.ret === Infinity ? '?' : isUnknownOutcome ? `${formatTime(op.ret)}?` : formatTime(op.ret);
  return `[${formatTime(op.call)}, ${ret}]`;
}

export function formatTime(t: number): string {
  return Number.isInteger(t) ? String(t) : String(Math.round(t * 1000) / 1000);
}

export function roleText<I, O>(w: WindowOp<I, O>): string {
  const unknown = w.isUnknownOutcome ? ' (outcome unknown)' : '';
  switch (w.role) {
    case 'linearized':
      return `#${w.order ?? '?'} in prefix${unknown}`;
    case 'stuck':
      return 'STUCK: cannot be linearized before it returned';
    case 'pending':
      return `pending: cannot go next either${unknown}`;
    default: {
      const unreachable: never = w.role;
      return unreachable;
    }
  }
}

export function renderViolationText<I, O>(v: Violation<I, O>): string {
  const stuck = v.window.find((w) => w.role === 'stuck');
  const lines = [
    `not linearizable: key ${JSON.stringify(v.key)} (${v.model} model, ${v.keyOpCount} ops)`,
    `longest linearizable prefix: ${v.prefix.length} ops; state after it: ${v.stateAfterPrefix}`,
  ];
  if (stuck !== undefined) {
    lines.push(
      `stuck at: process ${String(stuck.op.process)} ${stuck.description.op} -> ${stuck.description.result} ` +
        `${formatInterval(stuck.op, stuck.isUnknownOutcome)}`,
    );
  }
  const rows = v.window.map((w) => [
    String(w.op.process),
    formatInterval(w.op, w.isUnknownOutcome),
    w.description.op,
    w.description.result,
    roleText(w),
  ]);
  const header = ['process', '[call, ret]', 'op', 'result', ''];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
  const pad = (cells: string[]): string =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd();
  lines.push(pad(header), ...rows.map(pad));
  return lines.join('\n');
}

/** A one-paragraph account of any result; a violation adds its window. */
export function formatCheckResult<I, O>(result: CheckResult<I, O>): string {
  const s = result.stats;
  const tally = `${s.ops} ops over ${s.keys} keys, ${s.steps} steps, ${Math.round(s.elapsedMs)} ms`;
  switch (result.outcome) {
    case 'linearizable':
      return `linearizable: ${tally}`;
    case 'unknown':
      return (
        `unknown: the search budget ran out (${result.reason}) before an answer; ${tally}; ` +
        `unchecked keys: ${result.uncheckedKeys.map((k) => JSON.stringify(k)).join(', ')}`
      );
    case 'violation':
      return (
        `violation on ${result.failingKeys.length} key(s): ${result.failingKeys.map((k) => JSON.stringify(k)).join(', ')}; ` +
        `${tally}\n${renderViolationText(result.violation)}`
      );
    default: {
      const unreachable: never = result;
      return unreachable;
    }
  }
}
