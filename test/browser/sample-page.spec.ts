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

  it('signs users in to their own notifications, shows live connection stats, and stops on a bad token', async () => {
    const tell = (user: string, text: string) =>
      fetch(`${app.url}/notifications/broadcast`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer dev-broadcast-token' },
        body: JSON.stringify({ message: { text }, event_type: 'notification', filter: { user_id: user } }),
      });
    const notifications = (p: Page) => p.locator('#notifications li').allTextContents();

    // alice through the address, bob through the sign-in field
    const alice = await chrome.context.newPage();
    alice.on('pageerror', (err) => pageErrors.push(err.message));
    await alice.goto(app.url + '/?token=alice-token');
    const bob = await chrome.context.newPage();
    bob.on('pageerror', (err) => pageErrors.push(err.message));
    await bob.goto(app.url + '/');
    await bob.fill('#user-token', 'bob-token');
    await bob.click('#signin-button');
    for (const p of [alice, bob]) await p.waitForSelector('#private-state[data-state="open"]', { timeout: 10_000 });
    await expect(alice.locator('#whoami').textContent()).resolves.toBe('Signed in as alice');
    await expect(bob.locator('#whoami').textContent()).resolves.toBe('Signed in as bob');
    // the token left the address bar once read
    expect(alice.url()).toBe(app.url + '/');

    expect((await tell('alice', 'only for alice')).status).toBe(200);
    expect((await tell('bob', 'only for bob')).status).toBe(200);
    await alice.locator('#notifications li', { hasText: 'only for alice' }).waitFor({ timeout: 10_000 });
    await bob.locator('#notifications li', { hasText: 'only for bob' }).waitFor({ timeout: 10_000 });
    // the sample's timer sends each user reminders of their own
    await alice.locator('#notifications li', { hasText: 'Reminder' }).first().waitFor({ timeout: 10_000 });
    await bob.locator('#notifications li', { hasText: 'Reminder' }).first().waitFor({ timeout: 10_000 });
    for (const [p, me] of [[alice, 'alice'], [bob, 'bob']] as const) {
      for (const text of await notifications(p)) expect(text).toMatch(new RegExp(`^(only for ${me}|Reminder \\d+ for ${me})$`));
    }

    // stats, live: two private streams, then one once bob leaves
    const privateRow = alice.locator('#stats tr[data-endpoint="/notifications"] td:last-child');
    await expect(privateRow.filter({ hasText: /^2$/ }).waitFor({ timeout: 10_000 })).resolves.toBeUndefined();
    await alice.screenshot({ path: artifactPath('sample-private.png'), fullPage: true });
    await bob.close();
    await privateRow.filter({ hasText: /^1$/ }).waitFor({ timeout: 10_000 });

    // a bad token: 401 shown, no retry
    const wrong = await chrome.context.newPage();
    const streamRequests: string[] = [];
    wrong.on('request', (req) => {
      if (new URL(req.url()).pathname === '/notifications') streamRequests.push(req.url());
    });
    await wrong.goto(app.url + '/?token=wrong-token');
    await wrong.waitForSelector('#private-state[data-state="stopped"]', { timeout: 10_000 });
    await expect(wrong.locator('#private-state').textContent()).resolves.toMatch(/^401\b/);
    // the client's first reconnect would come within its first backoff step (at most a second)
    await wrong.waitForTimeout(2000);
    expect(streamRequests.length).toBeGreaterThanOrEqual(1);
    expect(streamRequests.length).toBeLessThanOrEqual(2);
    await wrong.screenshot({ path: artifactPath('sample-private-401.png'), fullPage: true });
    await wrong.close();
    await alice.close();
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
