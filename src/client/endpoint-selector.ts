// Which node the next attempt goes to. The client prefers the leader that the last answer named
// (the `raftkv-leader` header), so writes and linearizable reads skip the follower's forwarding
// hop; without a known leader it walks the configured endpoints in turn.

/** Checks and normalises an endpoint URL (`http://host:port`, no trailing slash). */
export function normalizeEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new TypeError(`not an endpoint URL: "${raw}" (expected http://HOST:PORT)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`endpoint "${raw}" must use http:// or https://`);
  }
  if (url.search !== '' || url.hash !== '') throw new TypeError(`endpoint "${raw}" must not have a query or fragment`);
  return url.href.replace(/\/+$/, '');
}

export class EndpointSelector {
  readonly endpoints: readonly string[];
  private cursor = 0;
  private leader: string | null = null;
  /** The last `raftkv-leader` header seen, and its normalised URL (null: not an endpoint). */
  private lastHeader: string | null = null;
  private lastHeaderUrl: string | null = null;

  constructor(endpoints: readonly string[]) {
    const unique = [...new Set(endpoints.map(normalizeEndpoint))];
    if (unique.length === 0) throw new TypeError('at least one endpoint is required');
    this.endpoints = unique;
  }

  /** The leader last named by a node, if it has not failed since. */
  get knownLeader(): string | null {
    return this.leader;
  }

  next(): string {
    return this.leader ?? this.endpoints[this.cursor % this.endpoints.length]!;
  }

  /**
   * Records the leader a node named in its answer. A node that names itself while refusing the
   * request (a leader without quorum) is not trusted as the leader for the next attempt.
   */
  noteLeader(header: string | null, answeredBy: string, answeredOk: boolean): void {
    if (header === null || header === '') {
      // The node knows no leader: an election is likely under way, so stop preferring the old one.
      if (!answeredOk && this.leader === answeredBy) this.leader = null;
      return;
    }
    // Every answer names the leader, nearly always the same one: parse a header once.
    let url: string | null;
    if (header === this.lastHeader) {
      url = this.lastHeaderUrl;
    } else {
      try {
        url = normalizeEndpoint(header);
      } catch {
        url = null;
      }
      this.lastHeader = header;
      this.lastHeaderUrl = url;
    }
    if (url === null) return;
    if (!answeredOk && url === answeredBy) return;
    this.leader = url;
  }

  /** The attempt at `endpoint` failed: try someone else next. */
  noteFailure(endpoint: string): void {
    if (this.leader === endpoint) this.leader = null;
    if (this.endpoints[this.cursor % this.endpoints.length] === endpoint) this.cursor = (this.cursor + 1) % this.endpoints.length;
  }
}
