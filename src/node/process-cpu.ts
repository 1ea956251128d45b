// CPU time this process has used since it started (user and system, all threads), in ms. The
// restart's log lines carry it, so a restart's phases say what each cost and not only when it
// ended (bench:scale prints them), and the metrics report it. A process utility, not part of the
// library: src/node/index.ts does not export it.
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000);
}
