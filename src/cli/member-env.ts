// The environment a raftkv member is started in by raftkv's own launchers (`raftkv cluster`, the
// test and benchmark harness, the container image): the caller's, plus glibc's malloc asked to
// back its large allocations with transparent huge pages (`glibc.malloc.hugetlb=1`, glibc 2.35
// and later; an older glibc or musl ignores it, as does a kernel with THP off).
//
// Why: a member's largest allocations are read once, whole, at start (the snapshot it keeps as
// its store's base, ~265 MB at 1M keys; each WAL segment) and made whole at every snapshot. In
// 4 KiB pages each costs a page fault per page on first touch, and on a virtual machine with
// costly faults and TLB misses most of a restart went there: one member at 1M keys, first write
// after a kill -9 2.3–3.1 s with it against 3.2–3.3 s without (alternated), and a 3-member
// restart median 5.6 s against 8.8 s on identical data (docs/benchmarks.md, "Twelfth session").
// V8's own heap is not malloc's and keeps 4 KiB pages.
//
// A caller that set GLIBC_TUNABLES at all keeps it as it is (GLIBC_TUNABLES=glibc.malloc.hugetlb=0
// turns this off): glibc 2.36 as Debian 12 ships it kept only the first of several tunables (the
// others were gone from the child's environment and, with hugetlb second, so was its effect), so
// adding ours to a caller's could silently drop theirs. To have both, put
// glibc.malloc.hugetlb=1 first.

/** glibc's tunable for transparent huge pages in malloc. */
export const MALLOC_HUGE_PAGES = 'glibc.malloc.hugetlb=1';

/** `env` with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, unless GLIBC_TUNABLES is set there already. */
export function memberEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = env['GLIBC_TUNABLES'];
  if (tunables !== undefined && tunables !== '') return env;
  return { ...env, GLIBC_TUNABLES: MALLOC_HUGE_PAGES };
}
