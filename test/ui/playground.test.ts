// The playground in a real browser (Debian's chromium through playwright-core): the page runs the
// real core and store in the simulator; it is driven by keyboard (Step one event), plays until a
// leader is elected, and, run to the end, arrives at the very state `npm run sim` prints for the
// same seed (its trace hash), so any CLI seed replays in the page. The static files are served
// by the same code as a node's /ui/ (ui-static.ts), with its CSP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { UiFiles } from '../../src/server/ui-static.js';
import { freePorts } from '../../src/transport/free-ports.js';
import { screenshot, withBrowser } from './browser.js';


const SIM_CLI = fileURLToPath(new URL('../../src/sim/cli.js', import.meta.url));

function simHash(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SIM_CLI, ...args], { timeout: 60_000 }, (err, stdout) => {
      const m = /: trace hash ([0-9a-f]{8}),/.exec(stdout);
      if (m === null) reject(new Error(`no trace hash in the sim's output (${err?.message ?? 'exit 0'}): ${stdout.slice(0, 500)}`));
      else resolve(m[1]!);
    });
  });
}

test('the playground elects a leader and replays a sim CLI seed to the same state (trace hash)', { timeout: 90_000 }, async () => {
  const files = new UiFiles();
  const server = createServer((req, res) => {
    const reply = files.route(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x').pathname, req.headers['if-none-match']);
    if (reply === null) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(reply.status, { ...(reply.headers ?? {}), ...(reply.contentType !== undefined ? { 'content-type': reply.contentType } : {}) });
    res.end(reply.bytes);
  });
  const [port] = await freePorts(1);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const errors: string[] = [];
  try {
    const expected = simHash(['--seed', '7', '--nodes', '3', '--time', '3']);
    await withBrowser(async (page) => {
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(`http://127.0.0.1:${port}/ui/playground?seed=7&nodes=3&time=3`);
      await page.waitForSelector('#event-count');
      assert.equal(await page.locator('#command').innerText(), 'npm run sim -- --seed 7 --nodes 3 --time 3');

      // Keyboard: the step button is a button; Enter and Space each handle one event.
      await page.focus('#step');
      await page.keyboard.press('Enter');
      await page.keyboard.press(' ');
      await page.keyboard.press('Enter');
      assert.equal(await page.locator('#event-count').innerText(), '3');

      // Real-time speed: an election takes a few hundred simulated ms.
      await page.selectOption('#speed', '1');
      await page.click('#play');
      await page.waitForFunction(() => /^n\d \(term \d+\)$/.test(document.getElementById('leader-id')?.textContent ?? ''), undefined, { timeout: 20_000, polling: 50 });
      await page.click('#play');
      assert.equal(await page.locator('#play').getAttribute('aria-pressed'), 'false');
      const leaders = await page.locator('#servers .badge.role-leader').count();
      assert.equal(leaders, 1);
      await screenshot(page, 'playground.png');

      // The rest of the run, then the CLI's state line for the same seed.
      await page.click('#run-to-end');
      await page.waitForFunction(() => (document.getElementById('final')?.dataset['hash'] ?? '') !== '', undefined, { timeout: 45_000, polling: 100 });
      const hash = await page.locator('#final').getAttribute('data-hash');
      assert.equal(hash, await expected, 'the page and `npm run sim` end in the same state');
      assert.match(await page.locator('#state-line').innerText(), new RegExp(`^seed 7: trace hash ${hash}, `));
      assert.equal(await page.locator('#violation').isVisible(), false);
      assert.equal(await page.locator('#invariants li.bad').count(), 0);

      // A new run from the form: the URL and the command follow, so the run can be shared.
      await page.fill('#seed', '12');
      await page.selectOption('#nodes', '5');
      await page.uncheck('#fault-disk');
      await page.click('#settings button[type=submit]');
      assert.match(page.url(), /\?seed=12&nodes=5&time=3&faults=crash%2Cpause%2Cpartition%2Coneway%2Closs%2Cduplicate%2Clatency$/);
      assert.equal(await page.locator('#command').innerText(), 'npm run sim -- --seed 12 --nodes 5 --time 3 --faults crash,pause,partition,oneway,loss,duplicate,latency');
      assert.equal(await page.locator('#event-count').innerText(), '0');
      assert.equal(await page.locator('#servers article').count(), 5);

      // A failing seed's replay line, pasted.
      await page.fill('#paste', 'npm run sim -- --seed 31 --nodes 3 --time 5 --no-check-quorum --verbose');
      await page.click('#paste-form button[type=submit]');
      assert.equal(await page.locator('#command').innerText(), 'npm run sim -- --seed 31 --nodes 3 --time 5 --no-check-quorum');
      assert.match(page.url(), /\?seed=31&nodes=3&time=5&checkQuorum=0$/);

      // A pause by hand: once a leader is up, its card says "paused" and its Pause button is off
      // while it is held; the run is marked as another run than the seed's.
      await page.click('#play');
      await page.waitForFunction(() => /^n\d \(term \d+\)$/.test(document.getElementById('leader-id')?.textContent ?? ''), undefined, { timeout: 20_000, polling: 50 });
      await page.click('#play');
      const leaderId = (await page.locator('#leader-id').innerText()).split(' ')[0]!;
      await page.click(`[data-key="pause-${leaderId}"]`);
      const card = page.locator(`article[aria-label="server ${leaderId}"]`);
      assert.equal(await card.locator('.badge', { hasText: 'paused' }).count(), 1);
      assert.equal(await page.locator(`[data-key="pause-${leaderId}"]`).isDisabled(), true);
    });
    assert.deepEqual(errors, [], 'no script errors (and no CSP refusals) in the page');
  } finally {
    server.close();
    server.closeAllConnections();
  }
});
