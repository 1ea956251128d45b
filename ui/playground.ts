// The playground (/ui/playground): the simulator with the real core and key-value store running
// in this page (src/sim/playground.ts). The URL holds the settings (?seed=N&nodes=3&time=10), so a
// run can be shared, and a seed from `npm run sim` replays here event for event: left alone, the
// page ends in the state the CLI prints (`seed N: trace hash ...`).
import { INVARIANTS } from '../src/sim/invariants/violation.js';
import { Playground, describeMembers, queryFromCommand, settingsFromQuery, settingsToQuery, simCommand, type PlaygroundSettings, type PlaygroundView } from '../src/sim/playground.js';
import { stateLine } from '../src/sim/result.js';
import { FAULT_KINDS, type FaultKind } from '../src/sim/options.js';
import { byId, h, logStrip, replace, roleBadge, svg } from './dom.js';

const SPEEDS: readonly [string, number][] = [
  ['0.01× (see each message)', 0.01],
  ['0.05×', 0.05],
  ['0.2×', 0.2],
  ['1× (real time)', 1],
  ['10×', 10],
];
/** Events per animation frame at most, so the page stays responsive at any speed. */
const MAX_EVENTS_PER_FRAME = 20_000;

let pg: Playground;
let playing = false;
let speed = 0.05;
let lastFrame = 0;
let running = false;

function start(settings: PlaygroundSettings, problems: readonly string[]): void {
  pg = new Playground(settings);
  playing = false;
  running = false;
  history.replaceState(null, '', `?${settingsToQuery(settings)}`);
  byId<HTMLInputElement>('seed').value = String(settings.seed);
  byId<HTMLSelectElement>('nodes').value = String(settings.nodes);
  byId<HTMLInputElement>('time').value = String(settings.timeSeconds);
  byId('command').textContent = simCommand(settings);
  byId('problems').textContent = problems.join('; ');
  byId('final').textContent = '';
  byId('final').dataset['hash'] = '';
  setPlaying(false);
  render();
}

function setPlaying(on: boolean): void {
  playing = on && !pg.isOver;
  const b = byId<HTMLButtonElement>('play');
  b.textContent = playing ? 'Pause' : 'Play';
  b.setAttribute('aria-pressed', String(playing));
  if (playing) {
    lastFrame = performance.now();
    requestAnimationFrame(frame);
  }
}

function frame(t: number): void {
  if (!playing) return;
  const dt = Math.min(100, t - lastFrame);
  lastFrame = t;
  const more = pg.advanceTo(pg.sim.now + dt * speed, MAX_EVENTS_PER_FRAME);
  render();
  if (!more) {
    setPlaying(false);
    finished();
    return;
  }
  requestAnimationFrame(frame);
}

/** Runs every remaining event in slices (the page stays usable), then shows the CLI's line. */
function runToEnd(): void {
  if (running) return;
  setPlaying(false);
  running = true;
  const status = byId('final');
  const slice = (): void => {
    if (!running) return;
    const t0 = performance.now();
    let more = true;
    while (more && performance.now() - t0 < 30) {
      for (let i = 0; i < 2000 && (more = pg.step()); i++);
    }
    status.textContent = `running… ${(pg.sim.now / 1000).toFixed(1)} s simulated, ${pg.sim.eventCount} events`;
    if (more) {
      setTimeout(slice, 0);
      return;
    }
    running = false;
    render();
    finished();
  };
  slice();
}

function finished(): void {
  const r = pg.result();
  const line = stateLine(r);
  const el = byId('final');
  el.dataset['hash'] = r.traceHash.toString(16).padStart(8, '0');
  replace(el, h('code', { id: 'state-line' }, line), pg.diverged ? h('span', { class: 'pill warn' }, ' faults by hand: not the CLI run of this seed') : h('span', { class: 'pill ok' }, ` same as: ${simCommand(pg.settings)}`));
}

// ---- drawing -------------------------------------------------------------------------------------

const MSG_COLOURS: Record<string, string> = { AppendEntries: '#2a6fdb', AppendEntriesResponse: '#6b9be8', RequestVote: '#c0392b', RequestVoteResponse: '#e07b6f', PreVote: '#d68910', PreVoteResponse: '#e5b25d', InstallSnapshot: '#7d3c98', TimeoutNow: '#117a65' };

function render(): void {
  const v = pg.view();
  const focusKey = (document.activeElement as HTMLElement | null)?.dataset['key'];
  const leaders = v.servers.filter((s) => s.state === 'up' && s.role === 'leader');
  replace(
    byId('status'),
    h('span', {}, 'time ', h('strong', {}, `${v.nowMs.toFixed(1)} ms`)),
    h('span', {}, 'events ', h('strong', { id: 'event-count' }, String(v.events))),
    h('span', {}, 'leader ', h('strong', { id: 'leader-id' }, leaders.map((l) => `${l.id} (term ${l.term})`).join(', ') || 'none')),
    h('span', {}, 'running hash ', h('code', {}, v.runningHash)),
    h('span', {}, 'in flight ', h('strong', {}, String(v.messages.length))),
    v.lossRate > 0 ? h('span', { class: 'pill warn' }, `loss ${(v.lossRate * 100).toFixed(0)}%`) : null,
    v.diverged ? h('span', { class: 'pill warn' }, 'diverged from the seed') : null,
  );
  drawCluster(v);
  replace(byId('servers'), ...v.servers.filter((s) => s.state !== 'spare').map((s) => serverCard(s)));
  renderInvariants(v);
  const trace = byId('trace');
  replace(trace, ...pg.trace.slice(-60).map((l) => h('li', { class: l.includes('VIOLATION') ? 'bad' : l.includes('BY HAND') ? 'hand' : l.includes('LEADER') ? 'lead' : '' }, l)));
  trace.scrollTop = trace.scrollHeight;
  const leader = leaders[0];
  byId('membership').textContent = leader?.config ? describeMembers(leader.config) : 'no leader';
  if (focusKey !== undefined) document.querySelector<HTMLElement>(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
}

function positions(count: number): [number, number][] {
  return Array.from({ length: count }, (_, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / count;
    return [250 + 170 * Math.cos(a), 210 + 170 * Math.sin(a)];
  });
}

function drawCluster(v: PlaygroundView): void {
  const shown = v.servers.filter((s) => s.state !== 'spare');
  const at = new Map<number, [number, number]>();
  positions(shown.length).forEach((p, i) => at.set(shown[i]!.slot, p));
  const root = svg('svg', { viewBox: '0 0 500 420', role: 'img', 'aria-label': `cluster of ${shown.length} servers; ${v.messages.length} messages in flight` });
  for (const m of v.messages) {
    const a = at.get(m.from);
    const b = at.get(m.to);
    if (a === undefined || b === undefined) continue;
    const x = a[0] + (b[0] - a[0]) * m.progress;
    const y = a[1] + (b[1] - a[1]) * m.progress;
    root.append(svg('line', { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: 'wire' }));
    const dot = svg('circle', { cx: x, cy: y, r: m.type.endsWith('Response') ? 5 : 7, fill: MSG_COLOURS[m.type] ?? '#555' });
    dot.append(svg('title', {}, `${m.type} term ${m.term}`));
    root.append(dot);
  }
  for (const s of shown) {
    const [x, y] = at.get(s.slot)!;
    const word = s.state !== 'up' ? s.state : (s.role ?? '?');
    const g = svg('g', { class: `server role-${word}${s.isolated ? ' isolated' : ''}` });
    g.append(svg('circle', { cx: x, cy: y, r: 42 }));
    g.append(svg('text', { x, y: y - 10, 'text-anchor': 'middle', class: 'name' }, s.id));
    g.append(svg('text', { x, y: y + 8, 'text-anchor': 'middle' }, word === 'leader' ? 'LEADER' : word));
    g.append(svg('text', { x, y: y + 24, 'text-anchor': 'middle' }, `term ${s.term}`));
    root.append(g);
  }
  const legend = svg('g', { class: 'legend' });
  let lx = 8;
  for (const [type, colour] of Object.entries(MSG_COLOURS)) {
    if (type.endsWith('Response')) continue;
    legend.append(svg('circle', { cx: lx + 5, cy: 410, r: 5, fill: colour }), svg('text', { x: lx + 13, y: 414 }, type));
    lx += 13 + type.length * 6.2 + 10;
  }
  root.append(legend);
  replace(byId('cluster'), root);
}

function serverCard(s: PlaygroundView['servers'][number]): HTMLElement {
  const b = (key: string, label: string, onClick: () => void, disabled = false): HTMLButtonElement => {
    const button = h('button', { type: 'button', 'data-key': `${key}-${s.id}`, disabled, 'aria-label': `${label} ${s.id}` }, label);
    button.addEventListener('click', () => {
      onClick();
      render();
    });
    return button;
  };
  const isUp = s.state === 'up';
  const card = h('article', { class: `member${s.role === 'leader' && isUp ? ' is-leader' : ''}${isUp ? '' : ' stale'}`, 'aria-label': `server ${s.id}` });
  card.append(
    h('header', {}, h('h3', {}, s.id), roleBadge(s.role, s.state), s.isolated ? h('span', { class: 'badge role-partitioned' }, 'isolated') : null, s.paused ? h('span', { class: 'badge role-partitioned' }, 'paused') : null, s.loading ? h('span', { class: 'badge role-partitioned' }, 'loading') : null),
    h('dl', { class: 'facts' }, h('dt', {}, 'term'), h('dd', {}, String(s.term)), h('dt', {}, 'voted for'), h('dd', {}, s.votedFor ?? '–'), h('dt', {}, 'commit / applied / last'), h('dd', {}, `${s.commitIndex} / ${s.appliedIndex} / ${s.lastIndex}`)),
    logStrip(s.log, s.commitIndex, s.snapshotIndex),
    h(
      'div',
      { class: 'buttons', role: 'group', 'aria-label': `faults for ${s.id}` },
      isUp ? b('crash', 'Crash', () => pg.crash(s.slot)) : b('restart', 'Restart', () => pg.restart(s.slot)),
      b('pause', 'Pause', () => pg.pause(s.slot), !isUp || s.paused),
      s.isolated ? b('heal', 'Heal links', () => pg.heal()) : b('isolate', 'Isolate', () => pg.isolate(s.slot)),
      b('transfer', 'Make leader', () => say(pg.transferLeadership(s.id)), !isUp || s.role === 'leader'),
      b('remove', 'Remove', () => say(pg.removeServer(s.id))),
    ),
  );
  return card;
}

function renderInvariants(v: PlaygroundView): void {
  const violated = v.violation?.invariant ?? null;
  replace(
    byId('invariants'),
    ...INVARIANTS.map((name) => h('li', { class: name === violated ? 'bad' : 'ok' }, name === violated ? '✗ ' : '✓ ', name)),
    violated !== null && !(INVARIANTS as readonly string[]).includes(violated) ? h('li', { class: 'bad' }, `✗ ${violated}`) : null,
  );
  const box = byId('violation');
  if (v.violation === null) {
    box.hidden = true;
  } else {
    box.hidden = false;
    replace(box, h('strong', {}, `${v.violation.invariant} violated`), ` at ${v.violation.timeMs.toFixed(3)} ms, event ${v.events}: `, v.violation.details);
  }
}

function say(text: string): void {
  byId('said').textContent = text;
}

// ---- controls ------------------------------------------------------------------------------------

function readSettings(): { settings: PlaygroundSettings; problems: string[] } {
  const faults = FAULT_KINDS.filter((k) => byId<HTMLInputElement>(`fault-${k}`).checked);
  // What the form does not show (core switches, snapshot knobs) carries over from the run.
  const q = new URLSearchParams(settingsToQuery(pg.settings));
  q.set('seed', byId<HTMLInputElement>('seed').value);
  q.set('nodes', byId<HTMLSelectElement>('nodes').value);
  q.set('time', byId<HTMLInputElement>('time').value);
  q.set('faults', faults.length === 0 ? 'none' : faults.join(','));
  q.set('membership', byId<HTMLInputElement>('membership-rate').checked ? String(pg.settings.membershipRate || 1) : '0');
  return settingsFromQuery(q.toString());
}

function showInForm(settings: PlaygroundSettings): void {
  for (const k of FAULT_KINDS) byId<HTMLInputElement>(`fault-${k}`).checked = settings.faults.includes(k as FaultKind);
  byId<HTMLInputElement>('membership-rate').checked = settings.membershipRate > 0;
}

function setUp(): void {
  const faultBox = byId('faults');
  for (const k of FAULT_KINDS) {
    faultBox.append(h('label', {}, h('input', { type: 'checkbox', id: `fault-${k}` }), ` ${k}`));
  }
  const speedSel = byId<HTMLSelectElement>('speed');
  for (const [label, value] of SPEEDS) speedSel.append(h('option', { value: String(value), selected: value === speed }, label));
  speedSel.addEventListener('change', () => (speed = Number(speedSel.value)));
  byId('play').addEventListener('click', () => setPlaying(!playing));
  byId('step').addEventListener('click', () => {
    setPlaying(false);
    if (!pg.step()) finished();
    render();
  });
  byId('run-to-end').addEventListener('click', runToEnd);
  byId('heal').addEventListener('click', () => {
    pg.heal();
    render();
  });
  byId('add-server').addEventListener('click', () => {
    say(pg.addServer());
    render();
  });
  byId('transfer-any').addEventListener('click', () => {
    say(pg.transferLeadership(null));
    render();
  });
  const loss = byId<HTMLSelectElement>('loss');
  loss.addEventListener('change', () => {
    pg.setLoss(Number(loss.value));
    render();
  });
  byId<HTMLFormElement>('settings').addEventListener('submit', (e) => {
    e.preventDefault();
    const { settings, problems } = readSettings();
    start(settings, problems);
  });
  byId<HTMLFormElement>('paste-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const { query, problems } = queryFromCommand(byId<HTMLInputElement>('paste').value);
    const parsed = settingsFromQuery(query);
    showInForm(parsed.settings);
    start(parsed.settings, [...problems, ...parsed.problems]);
  });
  const { settings, problems } = settingsFromQuery(location.search);
  showInForm(settings);
  start(settings, problems);
}

setUp();
