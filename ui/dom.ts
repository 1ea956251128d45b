// A few helpers for building the pages' DOM without a framework: elements with attributes and
// children, text that is always text (never parsed as HTML), and the role colours shared by both
// pages (every colour comes with a word, for those who cannot tell them apart).
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** The badge of a role: a class for the colour and the word itself. */
export function roleBadge(role: string | null, state: 'up' | 'down' | 'spare' | string = 'up'): HTMLElement {
  const word = state !== 'up' ? state : (role ?? 'unknown');
  return h('span', { class: `badge role-${word}` }, word === 'leader' ? 'LEADER' : word);
}

/** A stable hue per term, so entries of one term look alike across servers. */
export function termColour(term: number): string {
  return `hsl(${(term * 67) % 360} 65% 42%)`;
}

/** A log tail: one box per entry, its term written in it and coloured by it; committed ones solid. */
export function logStrip(log: readonly (readonly [number, number])[], commitIndex: number, snapshotIndex: number): HTMLElement {
  const strip = h('ol', { class: 'log', 'aria-label': `log tail, committed through ${commitIndex}` });
  if (snapshotIndex > 0) strip.append(h('li', { class: 'entry snapshot', title: `entries 1..${snapshotIndex} are compacted into a snapshot` }, `≤${snapshotIndex}`));
  for (const [index, term] of log) {
    const li = h('li', { class: index <= commitIndex ? 'entry committed' : 'entry uncommitted', title: `index ${index}, term ${term}${index <= commitIndex ? ', committed' : ', not yet committed'}` }, String(term));
    li.style.setProperty('--term', termColour(term));
    strip.append(li);
  }
  if (log.length === 0 && snapshotIndex === 0) strip.append(h('li', { class: 'entry empty' }, 'empty'));
  return strip;
}

export function ago(ms: number): string {
  if (ms < 1000) return 'now';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s ago` : `${Math.floor(s / 60)} min ${s % 60} s ago`;
}
