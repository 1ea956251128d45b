// A self-contained HTML page (inline SVG, no scripts, no external assets) drawing a violation's
// window as a timeline: one lane per process, a bar from call to return for each op, the ops the
// search could not linearize in red and orange, and the moment it got stuck as a dashed line.
import { formatInterval, formatTime, renderViolationText, roleText } from './render-text.js';
import type { Violation, WindowOp } from './types.js';

export interface TimelineOptions {
  /** Page heading. @default 'Linearizability violation on key "<key>"' */
  readonly title?: string;
  /** Width of the drawing area in pixels. @default 960 */
  readonly width?: number;
}

const LANE_LABEL_PX = 120;
const ROW_PX = 40;
const BAR_PX = 14;
const TOP_PX = 30;
const COLORS = { linearized: '#7a9cc6', stuck: '#d62828', pending: '#f4a261' } as const;

export function renderTimelineHtml<I, O>(violation: Violation<I, O>, options: TimelineOptions = {}): string {
  const title = options.title ?? `Linearizability violation on key ${JSON.stringify(violation.key)}`;
  const width = options.width ?? 960;
  const ops = violation.window;

  // The time axis spans the window's calls and known returns; unknown outcomes run off the
  // right edge (into a 6% margin) because they may take effect at any later time.
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const w of ops) {
    t0 = Math.min(t0, w.op.call);
    t1 = Math.max(t1, w.op.call);
    if (w.op.ret !== null && Number.isFinite(w.op.ret)) t1 = Math.max(t1, w.op.ret);
  }
  if (!Number.isFinite(t0)) [t0, t1] = [0, 1];
  if (t1 <= t0) t1 = t0 + 1;
  const plotLeft = LANE_LABEL_PX;
  const plotRight = width - 20;
  const edge = plotRight - (plotRight - plotLeft) * 0.06;
  const x = (t: number): number => plotLeft + ((t - t0) / (t1 - t0)) * (edge - plotLeft);

  const rows = assignRows(ops);
  const height = TOP_PX + rows.count * ROW_PX + 30;
  const stuck = ops.find((w) => w.role === 'stuck');

  const svg: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
  ];
  for (const lane of rows.lanes) {
    const y = TOP_PX + lane.firstRow * ROW_PX;
    svg.push(
      `<rect x="0" y="${y}" width="${width}" height="${lane.rows * ROW_PX}" fill="${lane.index % 2 === 0 ? '#f7f7f7' : '#ffffff'}"/>`,
      `<text x="8" y="${y + ROW_PX / 2 + 8}" font-weight="bold">process ${esc(lane.process)}</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const t = t0 + ((t1 - t0) * i) / 5;
    svg.push(
      `<line x1="${x(t)}" y1="${TOP_PX - 6}" x2="${x(t)}" y2="${height - 24}" stroke="#ddd"/>`,
      `<text x="${x(t)}" y="${height - 10}" text-anchor="middle" fill="#555">${esc(formatTime(t))}</text>`,
    );
  }
  if (stuck !== undefined && stuck.op.ret !== null) {
    const sx = x(stuck.op.ret);
    svg.push(
      `<line x1="${sx}" y1="${TOP_PX - 10}" x2="${sx}" y2="${height - 24}" stroke="${COLORS.stuck}" stroke-dasharray="4 3"/>`,
      `<text x="${sx}" y="${TOP_PX - 14}" text-anchor="middle" fill="${COLORS.stuck}">search stuck here</text>`,
    );
  }
  ops.forEach((w, i) => svg.push(bar(w, TOP_PX + (rows.rowOf[i] as number) * ROW_PX, x, edge)));
  svg.push('</svg>');

  const summary =
    `${violation.keyOpCount} ops on this key; the longest linearizable prefix found has ${violation.prefix.length} ops ` +
    `and leaves the state at ${violation.stateAfterPrefix}.`;
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:20px;color:#222}pre{background:#f4f4f4;padding:10px;overflow:auto}',
    '.key span{display:inline-block;width:14px;height:10px;margin:0 4px 0 14px;vertical-align:middle}</style>',
    '</head><body>',
    `<h1>${esc(title)}</h1>`,
    `<p>${esc(summary)}</p>`,
    '<p class="key">',
    `<span style="background:${COLORS.linearized}"></span>in the longest linearizable prefix (#n = its place)`,
    `<span style="background:${COLORS.stuck}"></span>stuck: no order lets it return with this result`,
    `<span style="background:${COLORS.pending}"></span>pending: could not be linearized next either`,
    '<span style="border:1px dashed #333;background:none"></span>outcome unknown (may apply any time after its call)',
    '</p>',
    svg.join('\n'),
    '<h2>Ops in the window</h2>',
    `<pre>${esc(renderViolationText(violation))}</pre>`,
    '</body></html>',
    '',
  ].join('\n');
}

function bar<I, O>(w: WindowOp<I, O>, rowY: number, x: (t: number) => number, edge: number): string {
  const x1 = x(w.op.call);
  const knownEnd = w.op.ret !== null && Number.isFinite(w.op.ret) ? x(w.op.ret) : null;
  const color = COLORS[w.role];
  const y = rowY + ROW_PX - BAR_PX - 6;
  const label = `${w.role === 'linearized' ? `#${w.order} ` : ''}${w.description.op} → ${w.description.result}`;
  const tip = `process ${String(w.op.process)} ${formatInterval(w.op, w.isUnknownOutcome)} ${w.description.op} -> ${w.description.result}: ${roleText(w)}`;
  const parts = [`<g><title>${esc(tip)}</title>`];
  const stroke = w.role === 'stuck' ? ` stroke="#7a0000" stroke-width="2"` : '';
  if (!w.isUnknownOutcome && knownEnd !== null) {
    parts.push(`<rect x="${x1}" y="${y}" width="${Math.max(2, knownEnd - x1)}" height="${BAR_PX}" fill="${color}"${stroke}/>`);
  } else {
    // Solid up to the time the client gave up (if any), then dashed to the edge and beyond.
    const solidEnd = knownEnd ?? x1;
    if (solidEnd > x1) parts.push(`<rect x="${x1}" y="${y}" width="${solidEnd - x1}" height="${BAR_PX}" fill="${color}" fill-opacity="0.45"/>`);
    parts.push(
      `<rect x="${x1}" y="${y}" width="${Math.max(2, edge - x1)}" height="${BAR_PX}" fill="none" stroke="${color}" stroke-dasharray="5 3"/>`,
      `<text x="${edge + 3}" y="${y + BAR_PX - 3}" fill="${color}">…</text>`,
    );
  }
  parts.push(`<text x="${x1}" y="${y - 4}"${w.role === 'linearized' ? '' : ' font-weight="bold"'}>${esc(label)}</text></g>`);
  return parts.join('');
}

interface Rows {
  readonly rowOf: number[];
  readonly count: number;
  readonly lanes: { process: string; index: number; firstRow: number; rows: number }[];
}

/** One lane per process; a process whose ops overlap (a retry after a timeout) gets extra rows. */
function assignRows<I, O>(ops: readonly WindowOp<I, O>[]): Rows {
  const byProcess = new Map<string, number[]>();
  ops.forEach((w, i) => {
    const p = String(w.op.process);
    const list = byProcess.get(p) ?? [];
    list.push(i);
    byProcess.set(p, list);
  });
  const processes = [...byProcess.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const rowOf: number[] = new Array<number>(ops.length).fill(0);
  const lanes: Rows['lanes'] = [];
  let next = 0;
  processes.forEach((p, index) => {
    const rowEnds: number[] = [];
    for (const i of byProcess.get(p) as number[]) {
      const w = ops[i] as WindowOp<I, O>;
      const end = w.isUnknownOutcome || w.op.ret === null ? Infinity : w.op.ret;
      let row = rowEnds.findIndex((e) => e < w.op.call);
      if (row === -1) row = rowEnds.push(end) - 1;
      else rowEnds[row] = end;
      rowOf[i] = next + row;
    }
    lanes.push({ process: p, index, firstRow: next, rows: rowEnds.length });
    next += rowEnds.length;
  });
  return { rowOf, count: Math.max(1, next), lanes };
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
