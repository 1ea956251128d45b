// Rate-limited logging for what strangers can trigger at will (refused handshakes, malformed
// frames, TLS failures, dropped connections). Without a bound, a flood of bad connections turns
// into a flood of log lines and fills the disk the write-ahead log lives on. Each kind of line
// gets at most `perSecond` lines per one-second window; the rest are counted, and one summary
// line per kind says how many were suppressed when the window closes. The transport uses it
// for its connections, RaftNode for the Leader Completeness alarm a hostile member can trigger.
import type { TransportLogger } from './types.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** What the limiter writes to: a logger without `debug` (RaftNode's NodeLogger) drops debug lines. */
export type LimitedLogger = Pick<TransportLogger, 'info' | 'warn' | 'error'> & Partial<Pick<TransportLogger, 'debug'>>;

interface Window {
  startedAt: number;
  lines: number;
  suppressed: number;
  timer: NodeJS.Timeout | null;
}

const WINDOW_MS = 1000;

export class LogLimiter {
  private readonly windows = new Map<string, Window>();
  private totalSuppressed = 0;
  private isClosed = false;

  constructor(
    private readonly logger: LimitedLogger,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Lines dropped so far (their summaries were logged instead). */
  get suppressed(): number {
    return this.totalSuppressed;
  }

  log(kind: string, level: Level, message: string, fields?: Readonly<Record<string, unknown>>): void {
    const now = this.now();
    let w = this.windows.get(kind);
    if (w === undefined) {
      w = { startedAt: now, lines: 0, suppressed: 0, timer: null };
      this.windows.set(kind, w);
    } else if (now - w.startedAt >= WINDOW_MS) {
      this.summarize(kind, w);
      w.startedAt = now;
      w.lines = 0;
    }
    if (w.lines < this.perSecond) {
      w.lines++;
      this.logger[level]?.(message, fields);
      return;
    }
    w.suppressed++;
    this.totalSuppressed++;
    if (w.timer === null && !this.isClosed) {
      // Say how many were dropped even if the flood stops and no later line comes to carry it.
      const window = w;
      w.timer = setTimeout(() => {
        window.timer = null;
        this.summarize(kind, window);
      }, Math.max(0, window.startedAt + WINDOW_MS - now));
      w.timer.unref();
    }
  }

  /** Logs the pending summaries and stops the timers (the transport is stopping). */
  close(): void {
    this.isClosed = true;
    for (const [kind, w] of this.windows) this.summarize(kind, w);
    this.windows.clear();
  }

  private summarize(kind: string, w: Window): void {
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
    if (w.suppressed === 0) return;
    this.logger.warn('log lines suppressed by the rate limit', { kind, suppressed: w.suppressed, perSecond: this.perSecond });
    w.suppressed = 0;
  }
}
