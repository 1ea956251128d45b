// The browser the UI tests drive: Debian's chromium (apt-get install chromium), headless, through
// playwright-core (which downloads no browser). Every launch is closed by its test, whatever
// happens; screenshots go to RAFTKV_UI_SCREENSHOTS when that is set (docs/img/ is made so).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env['RAFTKV_CHROMIUM'] ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null; in CI a missing browser is a failure, not a skip. */
export function noBrowser(): string | false {
  if (existsSync(CHROMIUM) || process.env['CI'] === 'true') return false;
  return `no chromium at ${CHROMIUM} (apt-get install chromium)`;
}

export async function withBrowser<T>(run: (page: Page, browser: Browser) => Promise<T>): Promise<T> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root in a container chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.setDefaultTimeout(15_000);
    return await run(page, browser);
  } finally {
    await browser.close();
  }
}

export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env['RAFTKV_UI_SCREENSHOTS'];
  if (dir === undefined || dir === '') return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name), fullPage: true });
}
