// Client authentication and permissions (`--auth-file`, API.md "Security"): bearer tokens mapped
// to principals, each with permissions `read`, `readwrite` (on key prefixes) or `admin`
// (membership, leader transfer, maintenance, every key). The file is JSON:
//
//   {"principals":[{"name":"app","token":"…","permissions":[{"access":"readwrite","prefix":"app/"}]},
//                  {"name":"ops","tokenSha256":"<hex>","permissions":[{"access":"admin"}]}]}
//
// A principal gives either `token` (at least 16 characters) or `tokenSha256` (the hex SHA-256 of
// the token, so the file need not hold the secret). Tokens are looked up by their SHA-256, never
// compared as strings, so the time a lookup takes says nothing about how close a guess was.
// The file is checked whole before it is used: a file that fails any check is refused with one
// line naming the file and the problem, and a reload (SIGHUP) that fails keeps the old one.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

export const ACCESS_LEVELS = ['read', 'readwrite', 'admin'] as const;
export type Access = (typeof ACCESS_LEVELS)[number];

export interface Permission {
  readonly access: Access;
  /** Keys this permission covers: those starting with `prefix` ('' for every key). Ignored for admin. */
  readonly prefix: string;
}

export interface Principal {
  readonly name: string;
  readonly permissions: readonly Permission[];
}

/** What a request wants to do, checked against a principal's permissions. */
export type Action =
  | { readonly type: 'read'; readonly key: string }
  | { readonly type: 'write'; readonly key: string }
  /** A listing or range read of every key starting with `prefix`. */
  | { readonly type: 'read-range'; readonly prefix: string }
  /** Cluster views anyone authenticated may see: status, members, metrics. */
  | { readonly type: 'cluster-read' }
  /**
   * Granting, renewing and reading leases: any principal that may write some keys (a lease
   * touches no key until a put attaches one; revoking it needs write access to its keys too).
   */
  | { readonly type: 'lease' }
  /** Membership, leader transfer, maintenance. */
  | { readonly type: 'admin' };

export class AuthFileError extends Error {}

const NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;
const MIN_TOKEN_CHARS = 16;
const MAX_TOKEN_CHARS = 4096;
const MAX_FILE_BYTES = 1 << 20;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

interface ParsedAuth {
  readonly byTokenHash: ReadonlyMap<string, Principal>;
  readonly byName: ReadonlyMap<string, Principal>;
}

/** Validates an auth file's parsed JSON; throws AuthFileError naming the first problem. */
export function parseAuthConfig(raw: unknown, source: string): ParsedAuth {
  const fail = (what: string): never => {
    throw new AuthFileError(`${source}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('must be a JSON object with "principals"');
  const top = raw as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== 'principals') fail(`unknown field "${k}"`);
  const list = top['principals'];
  if (!Array.isArray(list) || list.length === 0) fail('"principals" must be a non-empty array');
  const byTokenHash = new Map<string, Principal>();
  const byName = new Map<string, Principal>();
  (list as unknown[]).forEach((p, i) => {
    const at = `principals[${i}]`;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) fail(`${at} must be an object`);
    const o = p as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['name', 'token', 'tokenSha256', 'permissions'].includes(k)) fail(`${at} has an unknown field "${k}"`);
    const name = o['name'];
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) fail(`${at}.name must be 1-64 letters, digits, '.', '_', '@' or '-'`);
    if (byName.has(name as string)) fail(`principal "${String(name)}" appears twice`);
    let tokenHash: string;
    if (o['token'] !== undefined) {
      if (o['tokenSha256'] !== undefined) fail(`${at} gives both "token" and "tokenSha256"`);
      const token = o['token'];
      if (typeof token !== 'string' || token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS || /\s/.test(token)) {
        fail(`${at}.token must be ${MIN_TOKEN_CHARS}-${MAX_TOKEN_CHARS} characters without spaces`);
      }
      tokenHash = hashToken(token as string);
    } else {
      const h = o['tokenSha256'];
      if (typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h)) fail(`${at} needs "token" or "tokenSha256" (64 hex digits)`);
      tokenHash = (h as string).toLowerCase();
    }
    if (byTokenHash.has(tokenHash)) fail(`${at} has the same token as principal "${byTokenHash.get(tokenHash)!.name}"`);
    const perms = o['permissions'];
    if (!Array.isArray(perms) || perms.length === 0) fail(`${at}.permissions must be a non-empty array`);
    const permissions: Permission[] = (perms as unknown[]).map((q, j) => {
      const pat = `${at}.permissions[${j}]`;
      if (typeof q !== 'object' || q === null || Array.isArray(q)) fail(`${pat} must be an object`);
      const r = q as Record<string, unknown>;
      for (const k of Object.keys(r)) if (k !== 'access' && k !== 'prefix') fail(`${pat} has an unknown field "${k}"`);
      const access = r['access'];
      if (typeof access !== 'string' || !(ACCESS_LEVELS as readonly string[]).includes(access)) fail(`${pat}.access must be one of ${ACCESS_LEVELS.join(', ')}`);
      const prefix = r['prefix'] ?? '';
      if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > 4096) fail(`${pat}.prefix must be a string of at most 4096 bytes`);
      if (access === 'admin' && prefix !== '') fail(`${pat}: admin covers every key and takes no prefix`);
      return { access: access as Access, prefix: prefix as string };
    });
    const principal: Principal = { name: name as string, permissions };
    byName.set(principal.name, principal);
    byTokenHash.set(tokenHash, principal);
  });
  return { byTokenHash, byName };
}

/** Reads and validates an auth file (size-bounded, JSON); throws AuthFileError with one line. */
export function loadAuthFile(path: string): ParsedAuth {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_FILE_BYTES) throw new AuthFileError(`${path}: larger than ${MAX_FILE_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof AuthFileError) throw err;
    throw new AuthFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AuthFileError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseAuthConfig(raw, path);
}

/** Whether `principal` may do `action`. */
export function isPermitted(principal: Principal, action: Action): boolean {
  if (action.type === 'cluster-read') return true;
  for (const p of principal.permissions) {
    if (p.access === 'admin') return true;
    switch (action.type) {
      case 'read':
        if (action.key.startsWith(p.prefix)) return true;
        break;
      case 'write':
        if (p.access === 'readwrite' && action.key.startsWith(p.prefix)) return true;
        break;
      case 'read-range':
        // The whole range must lie inside the permission: every key starting with action.prefix
        // starts with p.prefix exactly when action.prefix does.
        if (action.prefix.startsWith(p.prefix)) return true;
        break;
      case 'lease':
        if (p.access === 'readwrite') return true;
        break;
      case 'admin':
        break;
    }
  }
  return false;
}

export function describeAction(action: Action): string {
  switch (action.type) {
    case 'read':
      return `read key "${action.key}"`;
    case 'write':
      return `write key "${action.key}"`;
    case 'read-range':
      return `read keys with prefix "${action.prefix}"`;
    case 'cluster-read':
      return 'read the cluster status';
    case 'lease':
      return 'use leases';
    case 'admin':
      return 'administer the cluster';
  }
}

/** The auth file in force; `reload()` swaps in a new version only if it is valid. */
export class Authenticator {
  private current: ParsedAuth;

  constructor(readonly path: string) {
    this.current = loadAuthFile(path);
  }

  /** Re-reads the file; on any problem keeps the old version and rethrows. */
  reload(): void {
    this.current = loadAuthFile(this.path);
  }

  get principalCount(): number {
    return this.current.byName.size;
  }

  /** The principal a bearer token names, or null. */
  authenticate(token: string): Principal | null {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) return null;
    return this.current.byTokenHash.get(hashToken(token)) ?? null;
  }

  /** A principal by name (a follower forwards the name, never the token). */
  byName(name: string): Principal | null {
    return this.current.byName.get(name) ?? null;
  }
}
