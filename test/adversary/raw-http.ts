// A raw TCP client for the client port, for what a well-behaved HTTP library will not do: trickle
// headers or a body, open a connection and say nothing, pipeline hundreds of malformed requests,
// or leave in the middle of a body. It records what came back and when the node hung up; every
// socket is destroyed by destroyRawHttp() (call it from `after`).
import net from 'node:net';
import type { TestNode } from '../cluster/harness.js';

const live = new Set<RawHttp>();

export function destroyRawHttp(): void {
  for (const c of live) c.destroy();
  live.clear();
}

export class RawHttp {
  readonly socket: net.Socket;
  received = '';
  closedAfterMs: number | null = null;
  private readonly openedAt = performance.now();
  private readonly closed: Promise<void>;
  private trickle: NodeJS.Timeout | null = null;

  constructor(node: TestNode) {
    const [host, port] = node.clientAddr.split(':') as [string, string];
    this.socket = net.connect({ host, port: Number(port) });
    this.socket.setEncoding('latin1');
    this.socket.on('data', (s: string) => (this.received += s));
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closedAfterMs = performance.now() - this.openedAt;
        this.stopTrickle();
        live.delete(this);
        resolve();
      }),
    );
    live.add(this);
  }

  get isClosed(): boolean {
    return this.closedAfterMs !== null;
  }

  write(text: string): this {
    if (!this.socket.destroyed) this.socket.write(text, 'latin1');
    return this;
  }

  /** Writes `next()` every `everyMs` until the node hangs up: the slowest client that still sends. */
  trickleEvery(everyMs: number, next: () => string): this {
    this.trickle = setInterval(() => this.write(next()), everyMs);
    return this;
  }

  /** The status codes of the responses received so far, in order. */
  get statuses(): number[] {
    return [...this.received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  }

  async waitClosed(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.closed.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return result;
  }

  /** Waits (bounded) until `n` responses have come back or the node hung up. */
  async waitResponses(n: number, timeoutMs: number): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.statuses.length < n && !this.isClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.statuses;
  }

  private stopTrickle(): void {
    if (this.trickle !== null) clearInterval(this.trickle);
    this.trickle = null;
  }

  destroy(): void {
    this.stopTrickle();
    this.socket.destroy();
    live.delete(this);
  }
}
