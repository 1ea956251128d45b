// The dashboard's and playground's files (/ui/, /ui/playground, /ui/NAME), served from dist/ui/
// as `npm run build` left them (scripts/build-ui.mjs). Served without a token: they are the
// package's own files, and a browser cannot send one on a navigation; the data they show comes
// from /v1/ui/events, which needs one. A request names a file from a fixed table read once from
// the directory; no part of the URL ever reaches a path, so nothing outside dist/ui/ can be read.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ApiError } from './errors.js';
import { expectMethod, type Reply } from './http-util.js';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  png: 'image/png',
  svg: 'image/svg+xml',
  json: 'application/json',
};
const NAME = /^[a-z0-9][a-z0-9-]*\.(html|js|css|png|svg|json)$/;
/** Only this page's own files and its own node: no inline script, no other origin, no framing. */
export const UI_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface UiFile {
  readonly bytes: Uint8Array;
  readonly type: string;
  readonly etag: string;
}

export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

export class UiFiles {
  private files: Map<string, UiFile> | null = null;

  constructor(private readonly dir: string = DEFAULT_UI_DIR) {}

  /** The reply for a /ui path, or null when the path is not under /ui. */
  route(method: string, path: string, ifNoneMatch: string | undefined): Reply | null {
    if (path !== '/ui' && !path.startsWith('/ui/')) return null;
    expectMethod(method, ['GET', 'HEAD']);
    // The pages name their files relative to themselves: each has one address.
    if (path === '/ui') return { status: 301, headers: { location: '/ui/' } };
    if (path === '/ui/playground/') return { status: 301, headers: { location: '/ui/playground' } };
    const rest = path.slice('/ui/'.length);
    const name = rest === '' ? 'index.html' : rest === 'playground' ? 'playground.html' : rest;
    const file = NAME.test(name) ? this.load().get(name) : undefined;
    if (file === undefined) {
      if (this.load().size === 0) throw new ApiError('NOT_FOUND', 'the dashboard was not built: run `npm run build` (it bundles dist/ui/)');
      throw new ApiError('NOT_FOUND', `no such dashboard file: ${name.slice(0, 100)}`);
    }
    const isPage = file.type.startsWith('text/html');
    const headers: Record<string, string> = {
      etag: file.etag,
      // Pages are checked every time (a rebuilt node serves the new one); assets are named by the
      // page that loads them and revalidated after a few minutes.
      'cache-control': isPage ? 'no-cache' : 'public, max-age=300',
      'content-security-policy': UI_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    };
    if (ifNoneMatch === file.etag) return { status: 304, headers };
    return { status: 200, bytes: file.bytes, contentType: file.type, headers };
  }

  private load(): Map<string, UiFile> {
    // An empty table (not built yet) is looked for again: a build after the start is picked up.
    if (this.files !== null && this.files.size > 0) return this.files;
    const files = new Map<string, UiFile>();
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      // Not built: every /ui path answers 404 with the reason.
    }
    for (const name of names) {
      if (!NAME.test(name)) continue;
      const path = `${this.dir}/${name}`;
      if (!statSync(path).isFile()) continue;
      const bytes = readFileSync(path);
      files.set(name, { bytes, type: TYPES[name.slice(name.lastIndexOf('.') + 1)]!, etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"` });
    }
    this.files = files;
    return files;
  }
}
