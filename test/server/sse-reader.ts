// A test reader of Server-Sent Events (GET /v1/watch): one connection of its own, the stream
// parsed with the client's SseParser, and bounded waits for the next messages. Messages that
// only set an id (the stream's opening) are kept apart from those with data.
import { request, type IncomingMessage, type ClientRequest } from 'node:http';
import { SseParser, type SseMessage } from '../../src/client/index.js';

export interface SseEvent {
  readonly id: string | undefined;
  readonly json: Record<string, unknown>;
}

export class SseReader {
  readonly messages: SseMessage[] = [];
  /** The id of the last message that set one (what an EventSource would send as Last-Event-ID). */
  lastId: string | undefined;
  isEnded = false;
  private waiters: (() => void)[] = [];
  private taken = 0;

  private constructor(
    readonly req: ClientRequest,
    readonly res: IncomingMessage,
    readonly body: string,
  ) {}

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  /** Opens `base + path`; a non-200 answer is read whole into `body`. */
  static open(base: string, path: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, base), { method: 'GET', headers, agent: false });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`GET ${path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(new SseReader(req, res, text)));
          res.on('error', reject);
          return;
        }
        const reader = new SseReader(req, res, '');
        const parser = new SseParser();
        res.on('data', (chunk: string) => {
          for (const m of parser.feed(chunk)) {
            if (m.id !== undefined) reader.lastId = m.id;
            if (m.data !== '') reader.messages.push(m);
          }
          reader.wake();
        });
        const end = (): void => {
          reader.isEnded = true;
          reader.wake();
        };
        res.on('end', end);
        res.on('close', end);
        res.on('error', end);
        resolve(reader);
      });
      req.end();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next `n` messages with data (progress included unless `skipProgress`), parsed. */
  async take(n: number, timeoutMs = 5000, skipProgress = true): Promise<SseEvent[]> {
    const out: SseEvent[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const m = this.messages[this.taken];
      if (m !== undefined) {
        this.taken++;
        const json = JSON.parse(m.data) as Record<string, unknown>;
        if (skipProgress && json['type'] === 'progress') continue;
        out.push({ id: m.id, json });
        continue;
      }
      if (this.isEnded) throw new Error(`the stream ended after ${out.length} of ${n} events: ${JSON.stringify(out)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${out.length} of ${n} events within ${timeoutMs} ms: ${JSON.stringify(out)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return out;
  }

  /** Waits until the server ends the stream. */
  async ended(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isEnded) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the stream did not end within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Messages with data not taken yet. */
  get pending(): number {
    return this.messages.length - this.taken;
  }

  close(): void {
    this.req.destroy();
  }
}
