// Node ids and HOST:PORT addresses, as flags, the registry and join answers carry them. One
// pattern each, so an address that passes here can go into a URL or a header unchanged.
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** A hostname, an IPv4 address or a bracketed IPv6 one, then a port: no spaces, no CR/LF, no '/'. */
export const ADDR_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;

export function isNodeId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** The address, or null when `value` is not HOST:PORT with a port from 1 to 65535. */
export function parseAddress(value: string): HostPort | null {
  const m = ADDR_PATTERN.exec(value);
  if (m === null) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function isAddress(value: unknown): value is string {
  return typeof value === 'string' && parseAddress(value) !== null;
}

export const hostPortText = (a: HostPort): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/** A loopback host: 127.0.0.0/8, ::1 or localhost. Serving anything else in the clear earns a warning. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
