// The live dashboard (/ui/): one stream from the node that served the page (GET /v1/ui/events,
// Server-Sent Events read with fetch so a bearer token can go with it), re-drawn on every view.
// On a cluster run by `raftkv cluster`, the view carries the supervisor's controls, and the
// buttons to stop, restart, pause and partition nodes and to send writes appear.
import type { UiClusterView, UiControlAction, UiMember } from '../src/server/ui-types.js';
import { ago, byId, h, logStrip, replace, roleBadge, termColour } from './dom.js';

const TOKEN_KEY = 'raftkv-token';
let latest: UiClusterView | null = null;
let connected = false;
let lastReceived = 0;

function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function stream(): Promise<void> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  const t = token();
  if (t !== null) headers['authorization'] = `Bearer ${t}`;
  const res = await fetch('/v1/ui/events', { headers, cache: 'no-store' });
  if (res.status === 401 || res.status === 403) {
    showTokenForm(res.status === 401 ? 'This cluster wants a token with read access to its status.' : 'That token may not read the cluster status.');
    throw new Error(`HTTP ${res.status}`);
  }
  if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
  byId('token-form').hidden = true;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended');
    buffer += value;
    // Events end with a blank line; a view is one `data:` line.
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        latest = JSON.parse(line.slice(6)) as UiClusterView;
        lastReceived = Date.now();
        setConnected(true);
        render(latest);
      }
    }
    if (buffer.length > 8 << 20) throw new Error('an event too large');
  }
}

function setConnected(on: boolean): void {
  if (on === connected) return;
  connected = on;
  const el = byId('connection');
  el.textContent = on ? 'live' : 'reconnecting…';
  el.className = on ? 'pill ok' : 'pill warn';
}

async function loop(): Promise<void> {
  for (;;) {
    try {
      await stream();
    } catch {
      setConnected(false);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function showTokenForm(reason: string): void {
  const form = byId<HTMLFormElement>('token-form');
  byId('token-reason').textContent = reason;
  form.hidden = false;
}

function setUpTokenForm(): void {
  const form = byId<HTMLFormElement>('token-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = byId<HTMLInputElement>('token-input').value.trim();
    if (v === '') sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, v);
    form.hidden = true;
  });
}

// ---- rendering -----------------------------------------------------------------------------------

function render(v: UiClusterView): void {
  // Redrawing replaces the buttons: keep the keyboard focus on the same one.
  const focusKey = (document.activeElement as HTMLElement | null)?.dataset['key'];
  const leader = v.members.find((m) => m.id === v.leader);
  replace(
    byId('summary'),
    h('span', {}, 'leader ', h('strong', { id: 'leader-id' }, v.leader ?? 'none')),
    h('span', {}, 'term ', h('strong', { id: 'term' }, String(v.term))),
    h('span', {}, 'commit ', h('strong', {}, String(leader?.state?.commitIndex ?? '–'))),
    h('span', {}, 'throughput ', h('strong', {}, `${v.appliedPerSecond} entries/s`)),
    h('span', {}, 'write latency p50/p99 ', h('strong', {}, leader?.state?.latencyMs ? `${leader.state.latencyMs.p50} / ${leader.state.latencyMs.p99} ms` : '–')),
    h('span', {}, 'via ', h('strong', {}, v.via)),
    v.alarms.length > 0 ? h('span', { class: 'pill bad', role: 'alert' }, `alarm: ${v.alarms.join(', ')}`) : h('span', { class: 'pill ok' }, 'no alarms'),
  );
  replace(byId('members'), ...v.members.map((m) => memberCard(m, v)));
  renderMembership(v);
  renderTimeline(v);
  const controls = byId('controls');
  controls.hidden = v.controls === undefined;
  if (v.controls !== undefined) replace(byId('control-log'), ...v.controls.log.slice(-8).map((l) => h('li', {}, l)));
  if (focusKey !== undefined) document.querySelector<HTMLElement>(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
}

function memberCard(m: UiMember, v: UiClusterView): HTMLElement {
  const s = m.state;
  const stale = m.error !== null;
  const control = m.control ?? null;
  const stateWord = control !== null && control !== 'running' ? control : stale ? 'unreachable' : 'up';
  const card = h('article', { class: `member${stale ? ' stale' : ''}${s?.role === 'leader' && !stale ? ' is-leader' : ''}`, 'data-member': m.id, 'aria-label': `member ${m.id}` });
  card.append(
    h('header', {}, h('h3', {}, m.id), stale || stateWord !== 'up' ? roleBadge(null, stateWord) : roleBadge(s?.role ?? null), control === 'partitioned' && !stale ? roleBadge(s?.role ?? null) : null),
  );
  if (s === null) {
    card.append(h('p', { class: 'muted' }, m.error ?? 'not heard yet'));
  } else {
    const dl = h('dl', { class: 'facts' });
    const fact = (k: string, val: string): void => dl.append(h('dt', {}, k), h('dd', {}, val));
    fact('term', String(s.term));
    fact('voted for', s.votedFor ?? '–');
    fact('knows leader', s.leader ?? 'none');
    fact('commit / applied / last', `${s.commitIndex} / ${s.appliedIndex} / ${s.lastIndex}`);
    fact('snapshot through', String(s.snapshotIndex));
    fact('requests', `${s.requestsPerSecond}/s (writes ${s.writesPerSecond}/s)`);
    if (s.latencyMs !== null) fact('latency p50 / p99', `${s.latencyMs.p50} / ${s.latencyMs.p99} ms`);
    if (stale && m.ageMs !== null) fact('last heard', ago(m.ageMs));
    card.append(dl, logStrip(s.log, s.commitIndex, s.snapshotIndex));
    if (s.progress.length > 0) {
      card.append(h('p', { class: 'muted small' }, 'replication: ', ...s.progress.map((p) => `${p.id} match ${p.matchIndex} next ${p.nextIndex} (${p.state}); `)));
    }
  }
  if (m.error !== null && s !== null) card.append(h('p', { class: 'muted small' }, m.error));
  if (v.controls !== undefined) card.append(memberControls(m, control));
  return card;
}

function memberControls(m: UiMember, control: string | null): HTMLElement {
  const b = (action: UiControlAction, label: string, disabled: boolean): HTMLButtonElement => {
    const button = h('button', { type: 'button', 'data-key': `${action}-${m.id}`, disabled, 'aria-label': `${label} ${m.id}` }, label);
    button.addEventListener('click', () => void control_(action, m.id));
    return button;
  };
  const isStopped = control === 'stopped';
  const isPaused = control === 'paused';
  const isPartitioned = control === 'partitioned';
  return h(
    'div',
    { class: 'buttons', role: 'group', 'aria-label': `controls for ${m.id}` },
    b('stop', 'Kill -9', isStopped),
    b('restart', 'Restart', false),
    isPaused ? b('resume', 'Resume', isStopped) : b('pause', 'Pause', isStopped),
    isPartitioned ? b('heal', 'Heal', false) : b('partition', 'Partition', isStopped),
  );
}

async function control_(action: UiControlAction, target: string | null, extra: Record<string, string> = {}): Promise<void> {
  const status = byId('control-status');
  status.textContent = `${action}${target !== null ? ` ${target}` : ''}…`;
  try {
    const res = await fetch('/v1/ui/control', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action, ...(target !== null ? { target } : {}), ...extra }) });
    const body = (await res.json()) as { message?: string; error?: { message: string } };
    status.textContent = res.ok ? (body.message ?? 'done') : `refused: ${body.error?.message ?? res.status}`;
  } catch (err) {
    status.textContent = `failed: ${(err as Error).message}`;
  }
}

function renderMembership(v: UiClusterView): void {
  const source = v.members.find((m) => m.id === v.leader)?.state ?? v.members.find((m) => m.state !== null)?.state ?? null;
  if (source === null) {
    replace(byId('membership'), 'unknown');
    return;
  }
  const c = source.config;
  const isJoint = c.votersOutgoing.length > 0;
  replace(
    byId('membership'),
    h('p', {}, isJoint ? h('span', { class: 'pill warn' }, 'joint consensus (C old,new): both majorities decide') : h('span', { class: 'pill ok' }, source.isChangePending ? 'change pending commit' : 'stable')),
    h('dl', { class: 'facts' }, h('dt', {}, 'voters'), h('dd', {}, c.voters.join(', ')), ...(isJoint ? [h('dt', {}, 'old voters'), h('dd', {}, c.votersOutgoing.join(', '))] : []), h('dt', {}, 'learners'), h('dd', {}, c.learners.join(', ') || 'none'), h('dt', {}, 'configuration entry'), h('dd', {}, `index ${source.configIndex}`)),
  );
}

function renderTimeline(v: UiClusterView): void {
  const changes = v.leaderChanges;
  const list = h('ol', { class: 'timeline', 'aria-label': 'leader changes, newest first' });
  for (const c of [...changes].reverse().slice(0, 12)) {
    const li = h('li', {}, h('span', { class: 'swatch' }), `${new Date(c.atMs).toLocaleTimeString()} — `, c.leader === null ? h('em', {}, 'no leader') : h('strong', {}, c.leader), ` (term ${c.term})`);
    (li.firstChild as HTMLElement).style.background = c.leader === null ? '#999' : termColour(c.term);
    list.append(li);
  }
  replace(byId('timeline'), list);
}

function setUpWrites(): void {
  const form = byId<HTMLFormElement>('write-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = byId<HTMLInputElement>('write-key').value;
    const value = byId<HTMLInputElement>('write-value').value;
    const count = byId<HTMLInputElement>('write-count').value;
    void control_('write', null, { key, value, count });
  });
}

setUpTokenForm();
setUpWrites();
setInterval(() => {
  // Ages move on between views, and a silent stream is shown as such.
  if (latest !== null && Date.now() - lastReceived > 3000) setConnected(false);
}, 1000);
void loop();
