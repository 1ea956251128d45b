// Metrics of the Node.js process a node runs in, under the names Prometheus's Node.js client
// uses (process_*, nodejs_*), so the usual dashboards and alerts work unchanged: CPU, resident
// memory, heap, open file descriptors, event-loop delay and utilization, and GC pauses. Event-loop
// delay and utilization cover the time since the previous scrape; each scrape starts the next
// window. Everything is read at scrape time except GC pauses, which a PerformanceObserver moves
// into a histogram as they happen (batched by Node, a few per second under load).
import { readdirSync, readFileSync } from 'node:fs';
import { constants as perfConstants, monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import { Gauge, Histogram, ReadCounter, type Registry } from './metrics.js';
import { processCpuMs } from '../node/process-cpu.js';

/** GC pauses run from tens of microseconds (scavenges) to a second (a full mark-compact of a large heap). */
const GC_BUCKETS_SECONDS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;

const GC_KINDS: Readonly<Record<number, string>> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface RuntimeMetrics {
  /** Stops the event-loop monitor and the GC observer (the node is stopping). */
  close(): void;
}

export function registerRuntimeMetrics(registry: Registry): RuntimeMetrics {
  const startSeconds = Math.round((Date.now() - performance.now()) / 1000);
  registry.register(new ReadCounter('process_cpu_seconds_total', 'User and system CPU time spent by this process, in seconds', () => processCpuMs() / 1000));
  registry.register(new Gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds', () => startSeconds));
  let memory = process.memoryUsage();
  registry.onScrape(() => (memory = process.memoryUsage()));
  registry.register(new Gauge('process_resident_memory_bytes', 'Resident set size of the process, in bytes', () => memory.rss));
  registry.register(new Gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes', () => memory.heapUsed));
  registry.register(new Gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved, in bytes', () => memory.heapTotal));
  registry.register(new Gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (Buffers, ArrayBuffers), in bytes', () => memory.external));
  if (process.platform === 'linux') {
    registry.register(new Gauge('process_open_fds', 'Open file descriptors (sockets, WAL segments, snapshots)', () => openFds()));
    const maxFds = maxOpenFds();
    if (maxFds !== null) registry.register(new Gauge('process_max_fds', 'The limit on open file descriptors', () => maxFds));
  }

  // Event-loop delay: how late a timer fires, sampled every 10 ms (what a request waits before
  // this process even looks at it). Reset after each scrape: the gauges describe the last window.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let window = { mean: 0, p50: 0, p99: 0, max: 0 };
  let lastUtilization: EventLoopUtilization = performance.eventLoopUtilization();
  let utilization = 0;
  registry.onScrape(() => {
    const s = (ns: number): number => (Number.isFinite(ns) ? ns / 1e9 : 0);
    window = delay.count === 0 ? { mean: 0, p50: 0, p99: 0, max: 0 } : { mean: s(delay.mean), p50: s(delay.percentile(50)), p99: s(delay.percentile(99)), max: s(delay.max) };
    delay.reset();
    const now = performance.eventLoopUtilization();
    utilization = performance.eventLoopUtilization(now, lastUtilization).utilization;
    lastUtilization = now;
  });
  registry.register(new Gauge('nodejs_eventloop_lag_seconds', 'Mean event-loop delay since the previous scrape, in seconds', () => window.mean));
  registry.register(new Gauge('nodejs_eventloop_lag_p50_seconds', 'Median event-loop delay since the previous scrape, in seconds', () => window.p50));
  registry.register(new Gauge('nodejs_eventloop_lag_p99_seconds', '99th percentile of the event-loop delay since the previous scrape, in seconds', () => window.p99));
  registry.register(new Gauge('nodejs_eventloop_lag_max_seconds', 'Longest event-loop delay since the previous scrape, in seconds', () => window.max));
  registry.register(new Gauge('nodejs_eventloop_utilization_ratio', 'Share of the time since the previous scrape the event loop was busy (0 to 1)', () => utilization));

  const gc = registry.register(new Histogram('nodejs_gc_duration_seconds', 'Garbage collection pauses by kind (minor, major, incremental, weakcb), in seconds', GC_BUCKETS_SECONDS));
  for (const kind of Object.values(GC_KINDS)) gc.touch({ kind });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[(entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
      gc.observe(entry.duration / 1000, { kind });
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    close: () => {
      delay.disable();
      observer.disconnect();
    },
  };
}

function openFds(): number {
  try {
    // The listing itself holds one descriptor open while it reads.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return 0;
  }
}

function maxOpenFds(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line === undefined ? undefined : /^Max open files\s+(\d+)/.exec(line)?.[1];
    return soft === undefined ? null : Number(soft);
  } catch {
    return null;
  }
}
