// etcd's address flags for `raftkv serve`, so an operator's habits and manifests carry over:
//
//   --listen-client-urls URL          where the client port binds    (= --client-addr HOST:PORT)
//   --listen-peer-urls URL            where the peer port binds      (= --peer-addr HOST:PORT)
//   --advertise-client-urls URL       what clients are told          (= --advertise-client-addr)
//   --initial-advertise-peer-urls URL what other members dial        (= --advertise-peer-addr)
//
// Each also from the environment (RAFTKV_LISTEN_CLIENT_URLS, ...); --initial-cluster may name
// members by URL too (`a=https://10.0.0.1:2380`), as etcd's does. They are rewritten into the
// HOST:PORT flags before `serve` parses its flags, so there is one meaning for each address. A node
// listens on one address per port: a list of URLs, a URL with a path, credentials or a query, a
// scheme that disagrees with the TLS flags (https needs the certificate flags, http must not
// have them), or a URL flag given beside its HOST:PORT twin is a usage error naming the flag.
import { UsageError, envName } from './flags.js';

interface UrlFlag {
  readonly url: string;
  readonly addr: string;
  /** The TLS flag that https on this port needs. */
  readonly tlsFlag: string;
}

const URL_FLAGS: readonly UrlFlag[] = [
  { url: 'listen-client-urls', addr: 'client-addr', tlsFlag: 'cert-file' },
  { url: 'listen-peer-urls', addr: 'peer-addr', tlsFlag: 'peer-cert-file' },
  { url: 'advertise-client-urls', addr: 'advertise-client-addr', tlsFlag: 'cert-file' },
  { url: 'initial-advertise-peer-urls', addr: 'advertise-peer-addr', tlsFlag: 'peer-cert-file' },
];

/** The value of `--name` in argv (`--name V` or `--name=V`), else from the environment. */
function lookup(argv: readonly string[], name: string, env: NodeJS.ProcessEnv): { value: string; source: string } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === `--${name}`) return { value: argv[i + 1] ?? '', source: `--${name}` };
    if (a.startsWith(`--${name}=`)) return { value: a.slice(name.length + 3), source: `--${name}` };
  }
  const v = env[envName(name)];
  return v === undefined || v === '' ? undefined : { value: v, source: envName(name) };
}

function without(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) {
      i++;
      continue;
    }
    if (a.startsWith(`--${name}=`)) continue;
    out.push(a);
  }
  return out;
}

/** `http(s)://HOST:PORT` → `HOST:PORT` (IPv6 stays bracketed), checked as the flag's doc says. */
export function urlToHostPort(text: string, source: string, hasTls: boolean, tlsFlag: string): string {
  if (text.includes(',')) throw new UsageError(`${source} takes one URL (raftkv listens on one address per port), not "${text}"`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${source} must be a URL like http://10.0.0.1:2379, not "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${source} must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new UsageError(`${source} must be scheme://HOST:PORT alone (no credentials, path or query), not "${text}"`);
  }
  // WHATWG URL drops a port equal to the scheme's default: read it from the text in that case.
  const port = url.port !== '' ? url.port : /:(\d{1,5})\/?$/.exec(text)?.[1];
  if (port === undefined) throw new UsageError(`${source} needs a port, as in ${url.protocol}//${url.hostname}:2379`);
  if (url.protocol === 'https:' && !hasTls) throw new UsageError(`${source} is https but --${tlsFlag} is not given`);
  if (url.protocol === 'http:' && hasTls) throw new UsageError(`${source} is http but --${tlsFlag} turns TLS on: use https`);
  return `${url.hostname}:${port}`;
}

/**
 * argv for `serve` with etcd's URL flags (and their environment variables) rewritten into
 * raftkv's HOST:PORT flags. Throws UsageError for a bad URL or a flag given twice over.
 */
export function translateUrlFlags(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  let out = [...argv];
  for (const f of URL_FLAGS) {
    const given = lookup(out, f.url, env);
    if (given === undefined) continue;
    const twin = lookup(out, f.addr, env);
    if (twin !== undefined) throw new UsageError(`${given.source} and ${twin.source} both set the same address: give one`);
    const hasTls = lookup(out, f.tlsFlag, env) !== undefined;
    const hostPort = urlToHostPort(given.value, given.source, hasTls, f.tlsFlag);
    out = [...without(out, f.url), `--${f.addr}`, hostPort];
  }
  return translateInitialCluster(out, env);
}

/**
 * etcd writes --initial-cluster as `ID=https://HOST:PORT,...`; raftkv as `ID=HOST:PORT,...`. A
 * member given as a URL is checked as --initial-advertise-peer-urls is (one URL, scheme agreeing
 * with the peer TLS flags) and written as HOST:PORT.
 */
function translateInitialCluster(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const given = lookup(argv, 'initial-cluster', env);
  if (given === undefined || !given.value.includes('://')) return argv;
  const hasTls = lookup(argv, 'peer-cert-file', env) !== undefined;
  const members = given.value.split(',').map((part) => {
    const eq = part.indexOf('=');
    if (eq <= 0 || !part.slice(eq + 1).includes('://')) return part;
    return `${part.slice(0, eq)}=${urlToHostPort(part.slice(eq + 1), `${given.source} (member ${part.slice(0, eq)})`, hasTls, 'peer-cert-file')}`;
  });
  return [...without(argv, 'initial-cluster'), '--initial-cluster', members.join(',')];
}
