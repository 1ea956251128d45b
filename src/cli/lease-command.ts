// `raftkv lease grant|keepalive|revoke|ttl|list` (API.md "Coordination"; etcdctl's lease
// commands): one entry of the client commands (client-commands.ts), which prints errors and maps
// them to exit codes (a lease that is gone exits 3, as a missing key does).
import { UnavailableError, type RaftKvClient } from '../client/index.js';
import { ClientUsageError, expectPositionals, wholeNumberFlag, type OptionSpec, type ParsedCommand } from './client-args.js';

export const LEASE_USAGE = 'lease grant TTL [--id ID] | keepalive ID [--once] | revoke ID | ttl ID [--keys] | list';

export const LEASE_OPTIONS: OptionSpec = {
  id: { type: 'string', value: 'ID', description: 'lease grant: the id to give the lease', default: 'chosen by the cluster' },
  once: { type: 'boolean', description: 'lease keepalive: renew once and exit' },
  keys: { type: 'boolean', description: 'lease ttl: also list the keys attached' },
};

export interface LeaseCommandContext {
  readonly parsed: ParsedCommand;
  readonly args: readonly string[];
  readonly client: RaftKvClient;
  readonly isJson: boolean;
  readonly io: { readonly stdout: (s: string) => void; readonly stderr: (s: string) => void };
}

export const LEASE_ACTIONS = ['grant', 'keepalive', 'revoke', 'ttl', 'list'] as const;
const ACTIONS = LEASE_ACTIONS;

export async function runLease({ parsed, args, client, isJson, io }: LeaseCommandContext): Promise<number> {
  const [action, ...rest] = args;
  const out = (json: unknown, text: string): void => io.stdout(isJson ? `${JSON.stringify(json)}\n` : `${text}\n`);
  const onlyFor = (flag: string, allowed: string): void => {
    if (parsed.values[flag] !== undefined && action !== allowed) throw new ClientUsageError(`flag --${flag} is only for "lease ${allowed}"`);
  };
  onlyFor('id', 'grant');
  onlyFor('once', 'keepalive');
  onlyFor('keys', 'ttl');
  switch (action) {
    case 'grant': {
      const [ttl] = expectPositionals('lease grant', rest, ['TTL']) as [string];
      const ttlSeconds = whole(ttl, 'TTL (seconds)');
      const id = wholeNumberFlag(parsed, 'id', 1, Number.MAX_SAFE_INTEGER);
      const g = await client.grantLease(ttlSeconds, id !== undefined ? { id } : {});
      out(g, `lease ${g.id} granted with TTL ${g.ttlSeconds} s`);
      return 0;
    }
    case 'keepalive': {
      const id = whole((expectPositionals('lease keepalive', rest, ['ID']) as [string])[0], 'ID');
      // Until interrupted (or the lease is gone: NotFoundError, exit 3), every TTL/3.
      for (;;) {
        let waitMs: number;
        try {
          const g = await client.keepAliveLease(id);
          out(g, `lease ${g.id} kept alive: TTL ${g.ttlSeconds} s`);
          if (parsed.values['once'] === true) return 0;
          waitMs = (g.ttlSeconds * 1000) / 3;
        } catch (err) {
          if (!(err instanceof UnavailableError) || parsed.values['once'] === true) throw err;
          io.stderr(`lease ${id}: renewal failed, retrying: ${err.message}\n`);
          waitMs = 500;
        }
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
    case 'revoke': {
      const id = whole((expectPositionals('lease revoke', rest, ['ID']) as [string])[0], 'ID');
      const r = await client.revokeLease(id);
      out({ id, ...r }, `revoked lease ${id}: ${r.deleted} key${r.deleted === 1 ? '' : 's'} deleted (revision ${r.revision})`);
      return 0;
    }
    case 'ttl': {
      const id = whole((expectPositionals('lease ttl', rest, ['ID']) as [string])[0], 'ID');
      const t = await client.leaseTimeToLive(id, { keys: parsed.values['keys'] === true });
      const keys = t.keys === undefined ? '' : t.keys.map((k) => `\n  ${k}`).join('') + (t.more === true ? '\n  (more keys not shown)' : '');
      out(t, `lease ${id}: ${t.ttlSeconds} s left of ${t.grantedTtlSeconds} s${keys}`);
      return 0;
    }
    case 'list': {
      expectPositionals('lease list', rest, []);
      const ids: number[] = [];
      let after = 0;
      for (;;) {
        const page = await client.leases({ after });
        ids.push(...page.leases.map((l) => l.id));
        if (!page.more || page.leases.length === 0) break;
        after = page.leases[page.leases.length - 1]!.id;
      }
      io.stdout(isJson ? `${JSON.stringify({ leases: ids.map((id) => ({ id })) })}\n` : ids.map((id) => `${id}\n`).join(''));
      return 0;
    }
    default:
      throw new ClientUsageError(action === undefined ? `"lease" needs an action: ${ACTIONS.join(', ')}` : `unknown action "lease ${action}" (use ${ACTIONS.join(', ')})`);
  }
}

function whole(text: string, what: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new ClientUsageError(`${what} must be a whole number from 1, not "${text}"`);
  return Number(text);
}
