import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import type { Page } from 'playwright-core';
import { artifactPath, launchChromium, startChildApp, type ChildApp, type TestBrowser } from '../utils/browser.js';

// The compiled basic sample (npm run build) in its own process, driven in headless Chromium
// the way a person uses its page.
describe('sample/01-basic page in Chromium', () => {
  let app: ChildApp;
  let chrome: TestBrowser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [app, chrome] = await Promise.all([
      startChildApp('sample/01-basic/dist/main.js', { NEWS_INTERVAL_MS: '300' }, /nest-sse sample on/),
      launchChromium(),
    ]);
    page = await chrome.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
    page.on('response', (res) => {
      if (res.status() >= 400) pageErrors.push(`${res.status()} ${res.url()}`);
    });
  }, 120_000);

  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  const events = (p: Page, name: string) => p.locator(`#events li[data-event="${name}"]`);

  it('connects, shows live news, switches channel and broadcasts from the form', async () => {
    const started = Date.now();
    await page.goto(app.url + '/');
    expect(await page.title()).toBe('nest-sse sample');

    await page.waitForSelector('#state[data-state="open"]', { timeout: 10_000 });
    await expect(events(page, 'connection').first().textContent()).resolves.toContain('Connected to channel: news');
    // the sample's timer sends a headline to the news channel every NEWS_INTERVAL_MS
    await events(page, 'update').first().waitFor({ timeout: 10_000 });
    expect(await events(page, 'update').first().textContent()).toMatch(/Markets open higher|Local team wins|New library released|Rain expected tomorrow/);

    await page.selectOption('#channel', 'sports');
    await page.locator('#events li[data-event="connection"]', { hasText: 'Connected to channel: sports' }).waitFor({ timeout: 10_000 });
    await page.waitForSelector('#state[data-state="open"]');
    // news headlines go to the news channel only: a second of ticks must not reach sports
    await page.waitForTimeout(1000);
    expect(await events(page, 'update').count()).toBe(0);

    await page.fill('#message', 'Hello sports fans');
    await page.selectOption('#target', 'sports');
    await page.fill('#event-type', 'update');
    await page.click('#send');
    const sent = page.locator('#events li[data-event="update"]', { hasText: 'Hello sports fans' });
    await sent.waitFor({ timeout: 10_000 });
    await expect(page.locator('#result').textContent()).resolves.toMatch(/^sent to 1 of \d+$/);
    // the counter follows the list, which starts afresh on a channel switch
    const listed = await page.locator('#events li').count();
    await expect(page.locator('#count').textContent()).resolves.toBe(`${listed} events`);

    await page.screenshot({ path: artifactPath('sample-page.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    console.log(`sample page in Chromium: ${Date.now() - started} ms`);
  }, 120_000);
});
