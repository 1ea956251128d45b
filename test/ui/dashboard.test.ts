// The live dashboard in a real browser (Debian's chromium through playwright-core), against a real
// 3-process cluster started by `raftkv cluster`: the page shows exactly one leader; its Kill -9
// button really kills the leader's process, and the page follows to the new leader within a few
// seconds while greying out the dead one; a node's own /ui/ shows the same cluster without the
// supervisor's controls. Also measures how long the page takes to show the new leader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Page } from 'playwright-core';
import { freeBasePort } from '../../src/transport/free-ports.js';
import { childEnv, MAIN_JS, makeTempDir, pollUntil, removeTempDir, stopSupervisor } from '../cluster/harness.js';
import { tryHttp } from '../cluster/http.js';
import { screenshot, withBrowser } from './browser.js';

/** The leaders the page shows (badges that say LEADER) and the summary's leader. */

async function shownLeaders(page: Page): Promise<{ badges: string[]; summary: string }> {
  return page.evaluate(() => ({
    badges: [...document.querySelectorAll('article.member')].filter((a) => a.querySelector('.badge.role-leader') !== null).map((a) => a.getAttribute('data-member') ?? '?'),
    summary: document.getElementById('leader-id')?.textContent ?? 'none',
  }));
}

test('the dashboard shows one leader of a 3-process cluster and follows a kill -9 of it to the new leader', { timeout: 120_000 }, async () => {
  const dir = makeTempDir('ui-dashboard');
  const base = await freeBasePort([0, 1, 2, 3, 101, 102, 103]);
  const child = spawn(process.execPath, [MAIN_JS, 'cluster', '--nodes', '3', '--base-port', String(base), '--dir', dir, '--heartbeat-ms', '100', '--election-ms', '500'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await pollUntil('the supervisor to print the dashboard', 20_000, async () => (stdout.includes(`dashboard: http://127.0.0.1:${base}/ui/`) ? true : undefined), 100);
    const errors: string[] = [];
    await withBrowser(async (page) => {
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${base}/ui/`);
      await page.waitForFunction(() => document.querySelectorAll('article.member').length === 3 && document.querySelectorAll('article.member .badge.role-leader').length === 1, undefined, { timeout: 30_000, polling: 100 });
      const first = await shownLeaders(page);
      assert.equal(first.badges.length, 1);
      assert.equal(first.summary, first.badges[0]);
      const old = first.summary;
      assert.equal(await page.locator('#controls').isVisible(), true, 'the supervisor offers its controls');

      // Writes from the page, so that the logs have something to show.
      await page.fill('#write-count', '25');
      await page.click('#write-form button[type=submit]');
      await page.waitForFunction(() => /25\/25 writes/.test(document.getElementById('control-status')?.textContent ?? ''), undefined, { timeout: 20_000 });
      await page.waitForFunction(() => document.querySelectorAll('.log .entry.committed').length >= 3 * 20, undefined, { timeout: 10_000 });

      const killedAt = Date.now();
      await page.getByRole('button', { name: `Kill -9 ${old}`, exact: true }).click();
      await page.waitForFunction(
        (gone) => {
          const leaders = [...document.querySelectorAll('article.member')].filter((a) => a.querySelector('.badge.role-leader') !== null);
          const dead = document.querySelector(`article.member[data-member="${gone}"] .badge.role-stopped`);
          return leaders.length === 1 && leaders[0]!.getAttribute('data-member') !== gone && dead !== null;
        },
        old,
        { timeout: 20_000, polling: 50 },
      );
      const followedMs = Date.now() - killedAt;
      const after = await shownLeaders(page);
      assert.notEqual(after.summary, old);
      assert.deepEqual(after.badges, [after.summary]);
      // The process is really gone: its port does not answer.
      const oldPort = base + Number(old.slice(1));
      assert.equal(await tryHttp(`http://127.0.0.1:${oldPort}`, '/livez', { timeoutMs: 1000 }), null, `${old} still answers`);
      assert.match(stdout, new RegExp(`${old}: kill -9 \\(from the dashboard\\)`));
      // The timeline has the change.
      assert.match((await page.locator('#timeline').textContent()) ?? '', new RegExp(`${after.summary} \\(term \\d+\\)`));
      process.stdout.write(`# the dashboard showed the new leader ${after.summary} ${followedMs} ms after kill -9 of ${old} (election-ms 500)\n`);
      assert.ok(followedMs < 10_000, `took ${followedMs} ms`);
      await screenshot(page, 'dashboard.png');

      // A surviving node's own dashboard: the same cluster, and no controls.
      const survivor = after.summary;
      await page.goto(`http://127.0.0.1:${base + Number(survivor.slice(1))}/ui/`);
      await page.waitForFunction((leader) => document.getElementById('leader-id')?.textContent === leader && document.querySelectorAll('article.member .badge.role-leader').length === 1, survivor, { timeout: 15_000, polling: 100 });
      assert.equal(await page.locator('#controls').isVisible(), false);
      assert.equal(await page.locator(`article.member[data-member="${old}"].stale`).count(), 1, 'the dead member is shown as unreachable');
    });
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await stopSupervisor(child, exited);
    removeTempDir(dir);
  }
});
