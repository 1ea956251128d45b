// The browser the UI tests drive: Debian's chromium (apt-get install chromium), headless, through
// playwright-core (which downloads no browser). Every launch is closed by its test, whatever
// happens, and a missing browser is a failure, not a skip; screenshots go to RAFTKV_UI_SCREENSHOTS when that is set (docs/img/ is made so).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env['RAFTKV_CHROMIUM'] ?? '/usr/bin/chromium';

// Page functions run in the browser; these are the few DOM names they use (this project is typed
// for Node, without the DOM's types).
export interface PageElement {
  readonly textContent: string | null;
  readonly dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
declare global {
  const document: {
    querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
    querySelector(selector: string): PageElement | null;
    getElementById(id: string): PageElement | null;
  };
}

/** A missing browser fails the test with the way to install it: the UI tests never skip. */
export async function withBrowser<T>(run: (page: Page, browser: Browser) => Promise<T>): Promise<T> {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install chromium (or set RAFTKV_CHROMIUM); .ci/run installs it`);
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
