import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, Header, NotFoundException, Param } from '@nestjs/common';
import { SseEndpoint, SseHub, SseModule } from '@nest-sse/core';
import type { Page } from 'playwright-core';
import { eventually, request, startApp, type TestApp } from '../utils/app.js';
import { artifactPath, launchChromium, ROOT, type TestBrowser } from '../utils/browser.js';

const CLIENT_DIST = join(ROOT, 'packages', 'client', 'dist');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>client tabs</title><link rel="icon" href="data:,"></head>
<body><p>state: <b id="state">-</b>, role: <b id="role">-</b></p><ul id="notes"></ul>
<script type="module">
  import { SseClient } from '/client/index.js';
  const client = new SseClient('/feed', { backoff: { initialDelay: 100 } });
  window.notes = [];
  const show = () => {
    document.getElementById('state').textContent = client.state;
    document.getElementById('role').textContent = client.role;
  };
  client.on('note', (text) => {
    window.notes.push(text);
    const li = document.createElement('li');
    li.textContent = text;
    document.getElementById('notes').appendChild(li);
  });
  client.onStateChange(show);
  window.client = client;
  setInterval(show, 50);
</script></body></html>`;

/** The test page and the compiled client, served as ES modules from the app itself (one origin). */
@Controller()
class PageController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    return PAGE;
  }

  @Get('client/:file')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  client(@Param('file') file: string): string {
    if (!/^[\w.-]+\.js$/.test(file)) throw new NotFoundException();
    try {
      return readFileSync(join(CLIENT_DIST, file), 'utf8');
    } catch {
      throw new NotFoundException();
    }
  }
}

@SseEndpoint('/feed', { heartbeatInterval: 0, access: { stats: 'public' } })
class FeedController {}

describe('@nest-sse/client across the tabs of one origin, in Chromium', () => {
  let t: TestApp;
  let hub: SseHub;
  let chrome: TestBrowser;

  beforeAll(async () => {
    [t, chrome] = await Promise.all([
      startApp('express', { imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [PageController, FeedController] }),
      launchChromium(),
    ]);
    hub = t.app.get(SseHub);
  }, 120_000);

  afterAll(async () => {
    await chrome?.close();
    await t?.close();
  });

  const serverConnections = async () => (await request(`${t.url}/feed/stats`)).body.endpoint_clients as number;
  const clientOf = (page: Page) => page.evaluate(() => ({ state: (window as any).client.state, role: (window as any).client.role }));
  const notesOf = (page: Page) => page.evaluate(() => (window as any).notes as string[]);

  it('serves seven tabs over one server connection, and hands it on when the leader closes', async () => {
    const started = Date.now();
    const errors: string[] = [];
    const pages: Page[] = [];
    for (let i = 0; i < 7; i++) {
      const page = await chrome.context.newPage();
      page.on('pageerror', (err) => errors.push(err.message));
      page.on('response', (res) => {
        if (res.status() >= 400) errors.push(`${res.status()} ${res.url()}`);
      });
      await page.goto(t.url + '/');
      await page.waitForFunction(() => (window as any).client?.state === 'open', undefined, { timeout: 10_000 });
      pages.push(page);
    }
    const roles = await Promise.all(pages.map(async (page) => (await clientOf(page)).role));
    expect(roles).toEqual(['leader', 'follower', 'follower', 'follower', 'follower', 'follower', 'follower']);
    // more tabs than the browser's six connections per host, one stream on the server
    expect(await serverConnections()).toBe(1);

    await hub.broadcastEvent('note', 'one');
    for (const page of pages) await page.waitForFunction(() => (window as any).notes.includes('one'));

    // the leader goes away: the next tab in the lock's queue connects, resuming after 'one'
    const [leader, ...rest] = pages;
    await leader.close();
    await hub.broadcastEvent('note', 'between');
    await eventually(async () => (await clientOf(rest[0])).role === 'leader' && (await clientOf(rest[0])).state === 'open', 10_000, 'a new leader');
    await hub.broadcastEvent('note', 'two');
    for (const page of rest) await page.waitForFunction(() => (window as any).notes.includes('two'), undefined, { timeout: 10_000 });
    for (const page of rest) expect(await notesOf(page)).toEqual(['one', 'between', 'two']);
    await eventually(async () => (await serverConnections()) === 1, 5000, 'one server connection after the hand-over');
    // this hub serves only this test: the one hand-over is the one resume
    expect(hub.counters.replays).toBe(1);

    await rest[1].screenshot({ path: artifactPath('client-tabs.png') });
    expect(errors).toEqual([]);
    for (const page of rest) await page.close();
    await eventually(async () => (await serverConnections()) === 0, 5000, 'no server connection once every tab closed');
    console.log(`client tabs in Chromium: ${Date.now() - started} ms`);
  }, 120_000);
});
