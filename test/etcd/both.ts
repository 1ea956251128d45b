// The shape of every conformance test: one `test` whose subtests run the same check against etcd
// first, then raftkv, so each expectation is proven on etcd in the same run that holds raftkv to
// it. A failure names the target in the subtest's name; the parent fails with it.
import { test } from 'node:test';
import { TARGET_KINDS, type Target, type Targets } from './targets.js';

export interface BothOptions {
  /** For the whole test, both targets (and their start on first use). @default 90_000 */
  readonly timeoutMs?: number;
}

/** `check` against etcd, then against raftkv, as two subtests of one test named `name`. */
export function testBoth(targets: Targets, name: string, check: (target: Target) => Promise<void>, options: BothOptions = {}): void {
  test(name, { timeout: options.timeoutMs ?? 90_000 }, async (t) => {
    for (const kind of TARGET_KINDS) {
      await t.test(kind, async () => {
        const target = await targets.get(kind);
        await check(target);
      });
    }
  });
}
