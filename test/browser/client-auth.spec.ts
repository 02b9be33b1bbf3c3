import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  Body,
  CanActivate,
  Controller,
  ExecutionContext,
  Get,
  Header,
  HttpCode,
  Injectable,
  type LoggerService,
  Post,
  Res,
  ServiceUnavailableException,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { SseEndpoint, SseHub, SseModule, SseStreamTokens } from '@nest-sse/core';
import type { Page, Request } from 'playwright-core';
import { eventually, request, startApp, type TestApp } from '../utils/app.js';
import { artifactPath, launchChromium, ROOT, type TestBrowser } from '../utils/browser.js';

// The three sign-in recipes of packages/client/README.md, each in Chromium against a real guard,
// with the client loaded the way a page without a bundler loads it: the one-file ES module.

const BUNDLE = join(ROOT, 'packages', 'client', 'dist', 'browser.js');
const PASSWORDS: Record<string, string> = { alice: 'alice-pass', bob: 'bob-pass' };
const BEARERS: Record<string, string> = { 'alice-token': 'alice', 'bob-token': 'bob' };
const sessions = new Map<string, string>();
const tokens = new SseStreamTokens({ secret: randomBytes(32), ttl: 30 });
let tokensIssued = 0;
/** Every stream token the app issued, to look for in what it logged. */
const issuedTokens: string[] = [];
/** Everything the app logged through Nest's logger. */
const logged: string[] = [];
const captureLogger: LoggerService = Object.fromEntries(
  (['log', 'error', 'warn', 'debug', 'verbose', 'fatal'] as const).map((level) => [
    level,
    (...args: unknown[]) => logged.push(`${level}: ${args.map((a) => (a instanceof Error ? a.stack : String(a))).join(' ')}`),
  ]),
) as unknown as LoggerService;
/** Stream-token connects to refuse with 503 before letting them through. */
let refuseTokenConnects = 0;

function cookie(req: any, name: string): string | undefined {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** Recipe 1: a session cookie (HttpOnly, set by the sign-in route). */
@Injectable()
class SessionGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    const user = sessions.get(cookie(req, 'sid') ?? '');
    if (user === undefined) throw new UnauthorizedException('Sign in first.');
    req.user = { id: user };
    return true;
  }
}

/** Recipe 2: `Authorization: Bearer <token>`. */
@Injectable()
class BearerGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const user = token === undefined ? undefined : BEARERS[token];
    if (user === undefined) throw new UnauthorizedException('Send Authorization: Bearer <token>.');
    req.user = { id: user };
    return true;
  }
}

/** Recipe 3: a short-lived signed stream token in the query, for the native EventSource. */
@Injectable()
class StreamTokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    if (refuseTokenConnects > 0 && refuseTokenConnects--) throw new ServiceUnavailableException('Not now.');
    const token = new URL(req.url, 'http://localhost').searchParams.get('stream_token');
    const claims = tokens.verify(token);
    if (claims === undefined) throw new UnauthorizedException('The stream token is missing, altered or expired.');
    req.user = { id: claims.userId };
    return true;
  }
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>client auth</title><link rel="icon" href="data:,"></head>
<body><ul id="notes"></ul>
<script type="module">
  import { SseClient } from '/client.js';
  window.SseClient = SseClient;
  window.notes = [];
  window.show = (text) => {
    window.notes.push(text);
    const li = document.createElement('li');
    li.textContent = text;
    document.getElementById('notes').appendChild(li);
  };
  window.ready = true;
</script></body></html>`;

@Controller()
class AppController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    return PAGE;
  }

  @Get('client.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  client(): string {
    return readFileSync(BUNDLE, 'utf8');
  }

  @Post('session')
  @HttpCode(204)
  signIn(@Body() body: { user?: string; password?: string }, @Res({ passthrough: true }) res: any): void {
    if (!body?.user || PASSWORDS[body.user] !== body.password) throw new UnauthorizedException('Wrong user or password.');
    const sid = randomBytes(24).toString('base64url');
    sessions.set(sid, body.user);
    res.setHeader('Set-Cookie', `sid=${sid}; Path=/; HttpOnly; SameSite=Strict`);
  }

  @Post('stream-token')
  @UseGuards(BearerGuard)
  streamToken(@Res({ passthrough: true }) res: any): { token: string } {
    res.setHeader('Cache-Control', 'no-store');
    tokensIssued++;
    const token = tokens.issue(res.req.user.id);
    issuedTokens.push(token);
    return { token };
  }
}

const COMMON = {
  heartbeatInterval: 0,
  retry: 100,
  trustedMetadata: (req: any) => ({ user_id: String(req.user.id) }),
  access: { stats: 'public' as const, broadcast: 'disabled' as const },
};

@SseEndpoint('/cookie-feed', { ...COMMON, guards: { stream: [SessionGuard] } })
class CookieFeed {}

@SseEndpoint('/bearer-feed', { ...COMMON, guards: { stream: [BearerGuard] } })
class BearerFeed {}

// allowedKeys: [] keeps the token (and anything else in the query) out of the stream's metadata
@SseEndpoint('/token-feed', { ...COMMON, metadata: { allowedKeys: [] }, guards: { stream: [StreamTokenGuard] } })
class TokenFeed {}

describe('@nest-sse/client sign-in recipes, in Chromium', () => {
  let t: TestApp;
  let hub: SseHub;
  let chrome: TestBrowser;
  let page: Page;
  let streamRequests: Request[];
  let errors: string[];

  beforeAll(async () => {
    [t, chrome] = await Promise.all([
      startApp(
        'express',
        {
          imports: [SseModule.forRoot({ drainTimeout: 0 })],
          controllers: [AppController, CookieFeed, BearerFeed, TokenFeed],
          providers: [SessionGuard, BearerGuard, StreamTokenGuard],
        },
        // what Nest and nest-sse log, kept to check that no stream token is ever in it
        (app) => app.useLogger(captureLogger),
      ),
      launchChromium(),
    ]);
    hub = t.app.get(SseHub);
  }, 60_000);

  afterEach(async () => {
    await page?.close();
    await chrome.context.clearCookies();
  });

  afterAll(async () => {
    await chrome?.close();
    await t?.close();
  });

  /** A fresh page of the app, its stream requests and unexpected errors recorded. */
  async function openPage(): Promise<Page> {
    page = await chrome.context.newPage();
    streamRequests = [];
    errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('request', (req) => {
      if (/-feed/.test(req.url())) streamRequests.push(req);
    });
    await page.goto(t.url + '/');
    await page.waitForFunction(() => (window as any).ready === true);
    return page;
  }

  const notesOf = (p: Page) => p.evaluate(() => (window as any).notes as string[]);
  const clientState = (p: Page) =>
    p.evaluate(() => ({ state: (window as any).client.state, stopReason: (window as any).client.stopReason }));
  const connected = async (endpoint: string, user: string) => {
    await eventually(
      () => [...hub.streams(endpoint)].some((s) => s.metadata.user_id === user),
      10_000,
      `${user}'s stream on ${endpoint}`,
    );
  };
  const sendEach = async (endpoint: string) => {
    await hub.broadcast({ event: 'note', data: 'for bob', endpoint, filter: { user_id: 'bob' } });
    await hub.broadcast({ event: 'note', data: 'for alice', endpoint, filter: { user_id: 'alice' } });
  };

  it('recipe 1: a session cookie, sent by the native EventSource on the same origin', async () => {
    const p = await openPage();
    const signedIn = await p.evaluate(async () => {
      const res = await fetch('/session', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user: 'alice', password: 'alice-pass' }),
      });
      return res.status;
    });
    expect(signedIn).toBe(204);
    await p.evaluate(() => {
      const w = window as any;
      w.client = new w.SseClient('/cookie-feed');
      w.client.on('note', w.show);
    });
    await connected('/cookie-feed', 'alice');
    await sendEach('/cookie-feed');
    await p.waitForFunction(() => (window as any).notes.length === 1);
    expect(await notesOf(p)).toEqual(['for alice']);
    expect(await p.evaluate(() => document.cookie)).toBe(''); // HttpOnly: page scripts never see it
    expect(streamRequests.map((r) => r.resourceType())).toEqual(['eventsource']);

    // the fetch connection sends the cookie too (credentials: 'same-origin' by default)
    await p.evaluate(() => {
      const w = window as any;
      w.client.close();
      w.client = new w.SseClient('/cookie-feed', { connection: 'fetch' });
      w.client.on('note', w.show);
    });
    await p.waitForFunction(() => (window as any).client.state === 'open');
    await hub.broadcast({ event: 'note', data: 'by fetch', endpoint: '/cookie-feed', filter: { user_id: 'alice' } });
    await p.waitForFunction(() => (window as any).notes.length === 2);
    expect(await notesOf(p)).toEqual(['for alice', 'by fetch']);
    expect(streamRequests.map((r) => r.resourceType())).toEqual(['eventsource', 'fetch']);

    // without the cookie the guard refuses; the fetch connection sees the 401 and stops
    await p.evaluate(() => {
      const w = window as any;
      w.client.close();
      w.client = new w.SseClient('/cookie-feed', { connection: 'fetch', credentials: 'omit' });
    });
    await p.waitForFunction(() => (window as any).client.state === 'closed');
    expect((await clientState(p)).stopReason).toEqual({ status: 401, message: '401: Sign in first.', final: true });

    // the native EventSource cannot see that status (the README says so): signed out, it keeps
    // backing off, each error without a status
    await chrome.context.clearCookies();
    await p.evaluate(() => {
      const w = window as any;
      w.client.close();
      w.errors = [];
      w.client = new w.SseClient('/cookie-feed', { backoff: { initialDelay: 50, maxDelay: 100 } });
      w.client.onError((e: unknown) => w.errors.push(e));
    });
    await p.waitForFunction(() => (window as any).errors.length >= 3);
    const native = await p.evaluate(() => {
      const w = window as any;
      const seen = { errors: w.errors.slice(0, 3), state: w.client.state, stopReason: w.client.stopReason };
      w.client.close();
      return seen;
    });
    expect(native.stopReason).toBeUndefined();
    expect(native.state).toBe('connecting');
    for (const error of native.errors) {
      expect(error.status).toBeUndefined();
      expect(error.final).toBeUndefined();
      expect(error.retryIn).toBeGreaterThan(0);
    }
    expect(streamRequests.filter((r) => r.resourceType() === 'eventsource').length).toBeGreaterThanOrEqual(4);
    expect(errors).toEqual([]);
  }, 60_000);

  it('recipe 2: a bearer header through the fetch connection, made before every connect; a bad token stops at 401', async () => {
    const p = await openPage();
    await p.evaluate(() => {
      const w = window as any;
      w.token = 'alice-token';
      w.made = 0;
      w.client = new w.SseClient('/bearer-feed', {
        headers: () => {
          w.made++;
          return { Authorization: `Bearer ${w.token}` };
        },
      });
      w.client.on('note', w.show);
    });
    await connected('/bearer-feed', 'alice');
    await sendEach('/bearer-feed');
    await p.waitForFunction(() => (window as any).notes.length === 1);
    expect(await notesOf(p)).toEqual(['for alice']);
    expect(streamRequests.map((r) => [r.resourceType(), r.headers().authorization])).toEqual([['fetch', 'Bearer alice-token']]);

    // the token is refreshed: the next reconnect sends the new one, resuming after the last id
    const lastId = await p.evaluate(() => (window as any).client.lastEventId);
    await p.evaluate(() => ((window as any).token = 'alice-token'));
    for (const stream of hub.streams('/bearer-feed')) stream.close();
    await eventually(() => streamRequests.length === 2, 10_000, 'the reconnect');
    expect(streamRequests[1].headers()['last-event-id']).toBe(lastId);
    expect(await p.evaluate(() => (window as any).made)).toBe(2);
    await p.waitForFunction(() => (window as any).client.state === 'open');

    await p.evaluate(() => {
      const w = window as any;
      w.client.close();
      w.errors = [];
      w.client = new w.SseClient('/bearer-feed', { headers: { Authorization: 'Bearer wrong' }, backoff: { initialDelay: 50 } });
      w.client.onError((e: unknown) => w.errors.push(e));
    });
    await p.waitForFunction(() => (window as any).client.state === 'closed');
    expect(await p.evaluate(() => (window as any).errors)).toEqual([
      { status: 401, message: '401: Send Authorization: Bearer <token>.', final: true },
    ]);
    // a retry would come after 25-50 ms: twenty times that passes without one
    await p.waitForTimeout(1000);
    expect(streamRequests).toHaveLength(3);
    expect(errors).toEqual([]);
  }, 60_000);

  it('recipe 3: a signed stream token in the query for the native EventSource, fresh for every connect', async () => {
    const p = await openPage();
    const issuedBefore = tokensIssued;
    await p.evaluate(() => {
      const w = window as any;
      const streamToken = async () => {
        const res = await fetch('/stream-token', { method: 'POST', headers: { Authorization: 'Bearer alice-token' } });
        return { stream_token: (await res.json()).token };
      };
      w.client = new w.SseClient('/token-feed', { query: streamToken, backoff: { initialDelay: 50 } });
      w.client.on('note', w.show);
    });
    await connected('/token-feed', 'alice');
    await sendEach('/token-feed');
    await p.waitForFunction(() => (window as any).notes.length === 1);
    expect(await notesOf(p)).toEqual(['for alice']);
    expect(streamRequests.map((r) => r.resourceType())).toEqual(['eventsource']);
    const [stream] = hub.streams('/token-feed');
    // the user comes from the token; the token itself is not metadata
    expect(stream.metadata).toEqual({ user_id: 'alice' });
    expect(tokensIssued - issuedBefore).toBe(1);

    // a token is refused once expired, altered, or taken for another user
    const used = new URL(streamRequests[0].url()).searchParams.get('stream_token')!;
    const expired = tokens.issue('alice', Date.now() - 31_000);
    const [, expiry, signature] = used.split('.');
    const refused = [expired, `${Buffer.from('bob').toString('base64url')}.${expiry}.${signature}`];
    for (const bad of refused) {
      const res = await request(`${t.url}/token-feed?stream_token=${bad}`);
      expect(res.status).toBe(401);
      // the refusal does not echo the token back
      expect(res.text).not.toContain(signature);
    }

    // the stream drops and EventSource's own retry (same URL) is refused: it gives up, and the
    // client's reconnect asks for a fresh token and resumes after the last id
    const lastId = await p.evaluate(() => (window as any).client.lastEventId);
    refuseTokenConnects = 1;
    for (const s of hub.streams('/token-feed')) s.close();
    await eventually(() => streamRequests.length === 3, 10_000, 'the client to reconnect');
    await p.waitForFunction(() => (window as any).client.state === 'open', undefined, { timeout: 10_000 });
    await connected('/token-feed', 'alice');
    const [, retried, reconnect] = streamRequests.map((r) => new URL(r.url()).searchParams);
    expect(retried.get('stream_token')).toBe(used);
    // the reconnect asked for a token of its own (one issued within the same second as the first
    // is byte-for-byte the same, so the count tells, not the text)
    expect(tokensIssued - issuedBefore).toBe(2);
    expect(tokens.verify(reconnect.get('stream_token'))?.userId).toBe('alice');
    expect(reconnect.get('lastEventId')).toBe(lastId);
    await hub.broadcast({ event: 'note', data: 'again', endpoint: '/token-feed', filter: { user_id: 'alice' } });
    await p.waitForFunction(() => (window as any).notes.length === 2);
    expect(await notesOf(p)).toEqual(['for alice', 'again']);
    await p.screenshot({ path: artifactPath('client-auth.png') });
    expect(errors).toEqual([]);

    // no token, issued, expired or altered, is in anything the app logged (which did log: its routes)
    expect(logged.some((line) => line.includes('/token-feed'))).toBe(true);
    for (const token of [...issuedTokens, ...refused]) {
      const signaturePart = token.split('.')[2];
      expect(logged.filter((line) => line.includes(signaturePart))).toEqual([]);
    }
  }, 60_000);
});
