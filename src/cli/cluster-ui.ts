// The dashboard of `raftkv cluster` (what `npm start` prints): the same page as every node's
// /ui/, served by the supervisor on loopback, with controls no node has: kill -9, restart,
// pause (SIGSTOP/SIGCONT) and partition a node, and send writes. The view comes from one live
// node's /v1/ui/events, relayed; when that node is stopped the relay moves to another, so the
// page keeps following the cluster. Only a page of this origin can command it: the server binds
// 127.0.0.1, checks Host (no DNS rebinding) and Origin, and takes only JSON POSTs (a CORS
// preflight, which it never answers, guards every other site).
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { UiFiles } from '../server/ui-static.js';
import { UI_CONTROL_ACTIONS, type UiClusterView, type UiControlAction, type UiControlState } from '../server/ui-types.js';

export interface ControlledMember {
  readonly id: string;
  readonly clientUrl: string;
}

/** What the supervisor (cluster.ts) does for each command. */
export interface ClusterControls {
  readonly members: readonly ControlledMember[];
  state(id: string): UiControlState;
  stop(id: string): string;
  restart(id: string): string;
  pause(id: string): string;
  resume(id: string): string;
  partition(id: string): string;
  heal(id: string): string;
  write(key: string, value: string, count: number): Promise<string>;
}

export interface ClusterUiOptions {
  readonly port: number;
  readonly controls: ClusterControls;
  /** The nodes' CA and a token that may read the cluster's status (secure clusters). */
  readonly ca?: Buffer;
  readonly token?: string;
  /** @default 32 */
  readonly maxPages?: number;
}

const MAX_BODY = 16 * 1024;
const MAX_LOG = 50;

export class ClusterUi {
  readonly server: Server;
  private readonly files = new UiFiles();
  private readonly pages = new Set<ServerResponse>();
  private readonly log: string[] = [];
  private upstream: { close(): void } | null = null;
  private upstreamIndex = 0;
  private lastView: UiClusterView | null = null;
  /** Leader changes across relays (a node's own list starts when the relay moves to it). */
  private readonly timeline: UiClusterView['leaderChanges'][number][] = [];
  private retry: NodeJS.Timeout | null = null;
  private isClosed = false;
  private readonly hosts: Set<string>;

  constructor(private readonly o: ClusterUiOptions) {
    this.hosts = new Set([`127.0.0.1:${o.port}`, `localhost:${o.port}`]);
    this.server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.maxConnections = 128;
  }

  get url(): string {
    return `http://127.0.0.1:${this.o.port}/ui/`;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): void {
    this.isClosed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.upstream?.close();
    for (const p of this.pages) p.end();
    this.server.close();
    this.server.closeAllConnections();
  }

  private note(line: string): void {
    this.log.push(`${new Date().toLocaleTimeString()}  ${line}`);
    if (this.log.length > MAX_LOG) this.log.shift();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    if (!this.hosts.has(req.headers.host ?? '')) return json(res, 421, { error: { code: 'MISDIRECTED', message: 'this control server answers only to 127.0.0.1 or localhost' } });
    try {
      const ui = this.files.route(method, url.pathname, req.headers['if-none-match']);
      if (ui !== null) {
        res.writeHead(ui.status, { ...(ui.headers ?? {}), ...(ui.contentType !== undefined ? { 'content-type': ui.contentType } : {}) });
        res.end(method === 'HEAD' ? undefined : ui.bytes);
        return;
      }
    } catch (err) {
      return json(res, method === 'GET' || method === 'HEAD' ? 404 : 405, { error: { code: 'NOT_FOUND', message: (err as Error).message } });
    }
    if (url.pathname === '/v1/ui/events' && method === 'GET') return this.subscribe(res);
    if (url.pathname === '/v1/ui/control') {
      if (method !== 'POST') return json(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST only' } });
      const origin = req.headers.origin;
      if (origin !== undefined && !this.hosts.has(origin.replace(/^http:\/\//, ''))) return json(res, 403, { error: { code: 'FORBIDDEN', message: 'commands come only from this dashboard' } });
      if (!/^application\/json\s*(;.*)?$/i.test(req.headers['content-type'] ?? '')) return json(res, 415, { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'a command is a JSON POST' } });
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        return json(res, 400, { error: { code: 'BAD_REQUEST', message: `the command is not JSON: ${(err as Error).message}` } });
      }
      try {
        const message = await this.command(body);
        this.note(message);
        this.push();
        return json(res, 200, { message });
      } catch (err) {
        return json(res, 400, { error: { code: 'BAD_REQUEST', message: (err as Error).message } });
      }
    }
    return json(res, 404, { error: { code: 'NOT_FOUND', message: `no such endpoint: ${method} ${url.pathname.slice(0, 100)}` } });
  }

  private async command(x: unknown): Promise<string> {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error('a command is an object {"action", "target"}');
    const c = x as Record<string, unknown>;
    const action = c['action'];
    if (typeof action !== 'string' || !(UI_CONTROL_ACTIONS as readonly string[]).includes(action)) throw new Error(`action must be one of ${UI_CONTROL_ACTIONS.join(', ')}`);
    const ctl = this.o.controls;
    if (action === 'write') {
      const key = c['key'];
      const value = c['value'] ?? '';
      const count = Number(c['count'] ?? 1);
      if (typeof key !== 'string' || key === '' || key.length > 200) throw new Error('key must be a string of 1-200 characters');
      if (typeof value !== 'string' || value.length > 1000) throw new Error('value must be a string of at most 1000 characters');
      if (!Number.isSafeInteger(count) || count < 1 || count > 1000) throw new Error('count must be 1-1000');
      return ctl.write(key, value, count);
    }
    const target = c['target'];
    if (typeof target !== 'string' || !ctl.members.some((m) => m.id === target)) throw new Error(`target must be one of ${ctl.members.map((m) => m.id).join(', ')}`);
    const run: Record<Exclude<UiControlAction, 'write'>, (id: string) => string> = {
      stop: (id) => ctl.stop(id),
      restart: (id) => ctl.restart(id),
      pause: (id) => ctl.pause(id),
      resume: (id) => ctl.resume(id),
      partition: (id) => ctl.partition(id),
      heal: (id) => ctl.heal(id),
    };
    return run[action as Exclude<UiControlAction, 'write'>](target);
  }

  // ---- the relayed view ----------------------------------------------------------------------------

  private subscribe(res: ServerResponse): void {
    if (this.pages.size >= (this.o.maxPages ?? 32)) return json(res, 503, { error: { code: 'OVERLOADED', message: 'too many dashboards open' } });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'close' });
    res.write('retry: 1000\n\n');
    this.pages.add(res);
    res.once('close', () => {
      this.pages.delete(res);
      // Nobody watches: stop the node's stream (its gatherer asks every member 4 times a second).
      if (this.pages.size === 0) this.upstream?.close();
    });
    if (this.lastView !== null) this.send(res, this.decorate(this.lastView));
    if (this.upstream === null && this.retry === null) this.connect();
  }

  private noteLeader(v: UiClusterView): void {
    const last = this.timeline[this.timeline.length - 1];
    if (last === undefined && v.leader === null) return;
    if (last !== undefined && last.leader === v.leader && (v.leader === null || last.term === v.term)) return;
    this.timeline.push({ atMs: v.atMs, leader: v.leader, term: v.term });
    if (this.timeline.length > 64) this.timeline.shift();
  }

  /** Adds what the supervisor knows: controls, and each member's state as it left it. */
  private decorate(v: UiClusterView): UiClusterView {
    const ctl = this.o.controls;
    return { ...v, leaderChanges: [...this.timeline], members: v.members.map((m) => ({ ...m, control: ctl.members.some((c) => c.id === m.id) ? ctl.state(m.id) : 'running' })), controls: { actions: UI_CONTROL_ACTIONS, log: [...this.log] } };
  }

  private push(): void {
    if (this.lastView === null) return;
    const v = this.decorate(this.lastView);
    for (const p of this.pages) this.send(p, v);
  }

  private send(res: ServerResponse, v: UiClusterView): void {
    if (res.destroyed || res.writableNeedDrain) return;
    res.write(`data: ${JSON.stringify(v)}\n\n`);
  }

  /** Streams from the next running member; on any end or error, moves on to the one after. */
  private connect(): void {
    this.retry = null;
    if (this.isClosed || this.pages.size === 0) return;
    const ctl = this.o.controls;
    const members = ctl.members;
    let pick: ControlledMember | undefined;
    for (let k = 0; k < members.length; k++) {
      const m = members[(this.upstreamIndex + k) % members.length]!;
      if (ctl.state(m.id) === 'running') {
        pick = m;
        this.upstreamIndex = (this.upstreamIndex + k) % members.length;
        break;
      }
    }
    const again = (): void => {
      this.upstream = null;
      this.upstreamIndex++;
      if (!this.isClosed && this.retry === null) this.retry = setTimeout(() => this.connect(), 200);
    };
    if (pick === undefined) return again();
    const url = new URL('/v1/ui/events', pick.clientUrl);
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      headers: { accept: 'text/event-stream', ...(this.o.token !== undefined ? { authorization: `Bearer ${this.o.token}` } : {}) },
      ...(this.o.ca !== undefined ? { ca: this.o.ca } : {}),
      timeout: 2000,
    });
    let buffer = '';
    let silence: NodeJS.Timeout | null = null;
    const quiet = (): void => {
      // A paused node keeps its socket open and says nothing: that is a dead upstream too.
      if (silence !== null) clearTimeout(silence);
      silence = setTimeout(() => req.destroy(new Error('silent')), 1500);
    };
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (silence !== null) clearTimeout(silence);
      again();
    };
    this.upstream = { close: () => req.destroy() };
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        req.destroy();
        return;
      }
      quiet();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        quiet();
        buffer += chunk;
        if (buffer.length > 8 << 20) req.destroy();
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data: ')) continue;
            let parsed: unknown;
            try {
              parsed = JSON.parse(line.slice(6));
            } catch {
              continue;
            }
            // What decorate and the timeline read; anything else is skipped, never thrown here.
            if (!isClusterView(parsed)) continue;
            this.lastView = parsed;
            this.noteLeader(this.lastView);
            this.push();
          }
        }
      });
      res.on('error', end);
      res.on('close', end);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', end);
    req.on('close', end);
    req.end();
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('the command is too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isClusterView(v: unknown): v is UiClusterView {
  if (typeof v !== 'object' || v === null) return false;
  const members = (v as { members?: unknown }).members;
  return Array.isArray(members) && members.every((m: unknown) => typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string');
}
