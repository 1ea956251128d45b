// Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and ranks where the process spent its
// own time: self time per function and per source file, summed over the sampled call tree.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface HotSpot {
  readonly name: string;
  readonly selfMs: number;
  /** Share of the time the process was not idle. */
  readonly share: number;
  /** For runtime and native frames: the raftkv function under which most of this time was spent. */
  readonly via: string | null;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly functions: readonly HotSpot[];
  readonly files: readonly HotSpot[];
}

export function summarizeCpuProfile(path: string, top: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parentOf.set(c, n.id);
  }
  // A native `writev` says little alone; the nearest frame of our own code says who asked for it.
  const ownCaller = (id: number): string | null => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (isOwnCode(f.url)) return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    }
    return null;
  };
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the gap before sample i; charging it to sample i is V8's own convention.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const vias = new Map<string, Map<string, number>>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    totalUs += us;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = shortUrl(f.url);
    const fnName = `${f.functionName || '(anonymous)'}${where === '' ? '' : ` ${where}:${f.lineNumber + 1}`}`;
    fn.set(fnName, (fn.get(fnName) ?? 0) + us);
    const via = isOwnCode(f.url) ? null : ownCaller(id);
    if (via !== null) {
      const m = vias.get(fnName) ?? new Map<string, number>();
      m.set(via, (m.get(via) ?? 0) + us);
      vias.set(fnName, m);
    }
    const fileName = where === '' ? f.functionName : where;
    file.set(fileName, (file.get(fileName) ?? 0) + us);
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  const topVia = (name: string): string | null => {
    const m = vias.get(name);
    if (m === undefined) return null;
    const [best, us] = [...m].sort((a, b) => b[1] - a[1])[0]!;
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    return `${best}${m.size > 1 ? ` (${Math.round((us / total) * 100)}%; ${m.size} callers)` : ''}`;
  };
  const rank = (m: Map<string, number>, withVia: boolean): HotSpot[] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({ name, selfMs: us / 1000, share: us / busyUs, via: withVia ? topVia(name) : null }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, functions: rank(fn, true), files: rank(file, false) };
}

// file:///work/main/dist-bench/src/server/http-api.js -> src/server/http-api.js; node:internal/... stays.
function isOwnCode(url: string): boolean {
  return url.startsWith('file://') && url.includes('/src/');
}

function shortUrl(url: string): string {
  const m = /\/(src\/.*)$/.exec(url);
  if (url.startsWith('file://') && m !== null) return m[1]!;
  return url;
}

export function formatProfileSummary(s: ProfileSummary): string {
  const lines = [`profile: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.idleMs / 1000).toFixed(1)} s idle; shares are of busy time`];
  lines.push('  top functions by self time:');
  for (const h of s.functions) {
    lines.push(`    ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}${h.via === null ? '' : `  <- ${h.via}`}`);
  }
  lines.push('  top files by self time:');
  for (const h of s.files) lines.push(`    ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}`);
  return lines.join('\n');
}
