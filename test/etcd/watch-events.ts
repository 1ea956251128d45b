// The events `etcdctl watch -w json` prints: one WatchResponse a line, each with its events.
// Flattened to what the tests compare (type, key, value, revisions, version, previous value);
// the header's ids are not compared (they differ between clusters).
import { b64 } from './etcdctl.js';
import type { JsonKv } from './shapes.js';

export interface WatchEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** The value before this event, when the watch asked for it (--prev-kv) and there was one. */
  readonly prevValue?: string;
}

interface JsonWatchResponse {
  readonly Events?: readonly { readonly type?: number; readonly kv?: JsonKv; readonly prev_kv?: JsonKv }[];
}

/** Every event in `stdout` so far, in order; a line that is not JSON is an error (etcdctl prints only JSON with -w json). */
export function watchEvents(stdout: string): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    let response: JsonWatchResponse;
    try {
      response = JSON.parse(line) as JsonWatchResponse;
    } catch {
      // A line still being written: the caller polls again.
      continue;
    }
    for (const e of response.Events ?? []) {
      const kv = e.kv ?? { key: '' };
      events.push({
        type: e.type === 1 ? 'DELETE' : 'PUT',
        key: b64(kv.key),
        value: b64(kv.value),
        createRevision: kv.create_revision ?? 0,
        modRevision: kv.mod_revision ?? 0,
        version: kv.version ?? 0,
        ...(e.prev_kv !== undefined ? { prevValue: b64(e.prev_kv.value) } : {}),
      });
    }
  }
  return events;
}
