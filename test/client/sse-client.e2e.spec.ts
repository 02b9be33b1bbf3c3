import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { CanActivate, HttpException, Injectable, ServiceUnavailableException, UnauthorizedException } from '@nestjs/common';
import { SseEndpoint, SseHub, SseModule } from '@nest-sse/core';
import { SseClient, type SseClientError, type SseClientEvent, type SseClientOptions, type SseResetInfo } from '@nest-sse/client';
import { EventSource } from 'eventsource';
import { ADAPTERS, eventually, request, sleep, startApp, type TestApp } from '../utils/app.js';
import { freePort } from '../utils/redis-server.js';

/** The app's events, declared once for the hub and the client. */
type AppEvents = {
  update: { title: string };
  note: string;
  connection: string;
};

const seen: string[] = [];
let refuse = false;

/** Answers 503 while `refuse` is set, which makes EventSource give up: the client's backoff takes over. */
@Injectable()
class FlakyGuard implements CanActivate {
  canActivate(context: any): boolean {
    const req = context.switchToHttp().getRequest();
    seen.push(req.url);
    if (refuse) throw new ServiceUnavailableException('down for a moment');
    return true;
  }
}

@SseEndpoint('/feed', {
  heartbeatInterval: 0,
  retry: 50,
  access: { stats: 'public', broadcast: 'public' },
  guards: { stream: [FlakyGuard] },
})
class FeedController {}

const ES = EventSource as any;

describe('@nest-sse/client against a real app', () => {
  let t: TestApp;
  let hub: SseHub<AppEvents>;
  const clients: SseClient<any>[] = [];
  const open = <M extends Record<string, any> = AppEvents>(path: string, options: SseClientOptions<M> = {}) => {
    const client = new SseClient<M>(t.url + path, { EventSource: ES, backoff: { initialDelay: 50, maxDelay: 400 }, ...options });
    clients.push(client);
    return client;
  };
  const opened = (client: SseClient<any>) => eventually(() => client.state === 'open', 5000, 'the client to open');
  const feedClients = async () => (await request(`${t.url}/feed/stats`)).body.endpoint_clients as number;

  beforeAll(async () => {
    t = await startApp('express', {
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [FeedController],
      providers: [FlakyGuard],
    });
    hub = t.app.get(SseHub) as SseHub<AppEvents>;
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    refuse = false;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('hands typed, parsed data to handlers, with the raw text and the event id', async () => {
    const client = open('/feed');
    const updates: Array<[{ title: string }, SseClientEvent]> = [];
    const notes: string[] = [];
    const noteIds: string[] = [];
    client.on('update', (data, event) => updates.push([data, event]));
    client.on('note', (text, event) => {
      notes.push(text);
      noteIds.push(event.id);
    });
    // @ts-expect-error not an event of AppEvents
    client.on('nope', () => undefined);
    await opened(client);
    expect(client.role).toBe('own');

    await hub.broadcastEvent('update', { title: 'Hi' });
    await hub.broadcastEvent('note', 'plain words');
    // type checks only, never called
    (() => {
      // @ts-expect-error the payload of 'update' is { title: string }
      void hub.broadcastEvent('update', 'wrong');
    }) satisfies () => void;
    await eventually(() => notes.length === 1, 5000, 'the note');
    expect(updates).toHaveLength(1);
    const [data, event] = updates[0];
    expect(data).toEqual({ title: 'Hi' });
    expect(event).toMatchObject({ event: 'update', raw: '{"title":"Hi"}' });
    expect(event.id).toMatch(/^\w+-\d+$/);
    expect(notes).toEqual(['plain words']);
    // the last event received was the note
    expect(noteIds[0]).toMatch(/^\w+-\d+$/);
    expect(client.lastEventId).toBe(noteIds[0]);
    expect(client.lastEventId).not.toBe(event.id);
  });

  it('shares one connection among the clients of one URL and closes it with the last', async () => {
    const before = await feedClients();
    const a = open('/feed?room=1');
    const b = open('/feed?room=1');
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.on('note', (text) => gotA.push(text));
    b.on('note', (text) => gotB.push(text));
    await Promise.all([opened(a), opened(b)]);
    expect(await feedClients()).toBe(before + 1);

    await hub.broadcastEvent('note', 'to both', { filter: { room: '1' } });
    await eventually(() => gotA.length === 1 && gotB.length === 1, 5000, 'both clients to get the note');

    a.close();
    expect(a.state).toBe('closed');
    await hub.broadcastEvent('note', 'to b', { filter: { room: '1' } });
    await eventually(() => gotB.length === 2, 5000, 'b to get the second note');
    expect(gotA).toEqual(['to both']);
    expect(await feedClients()).toBe(before + 1);

    b.close();
    await eventually(async () => (await feedClients()) === before, 5000, 'the shared connection to close');
  });

  it('opens a connection of its own with share: false', async () => {
    const before = await feedClients();
    const a = open('/feed?room=2', { share: false });
    const b = open('/feed?room=2', { share: false });
    await Promise.all([opened(a), opened(b)]);
    expect(await feedClients()).toBe(before + 2);
  });

  it('shares a connection only among clients of one share mode', async () => {
    // Node has BroadcastChannel but no Web Locks: a lock manager that grants at once makes this page the leader
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    const locks = { request: (_name: string, _options: unknown, callback: (lock: unknown) => Promise<void>) => callback({}) };
    Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true });
    try {
      const before = await feedClients();
      const tabs = open('/feed?room=5', { share: 'tabs' });
      const page = open('/feed?room=5', { share: 'page' });
      const samePage = open('/feed?room=5', { share: 'page' });
      await Promise.all([opened(tabs), opened(page), opened(samePage)]);
      expect([tabs.role, page.role, samePage.role]).toEqual(['leader', 'own', 'own']);
      expect(await feedClients()).toBe(before + 2);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete (globalThis as any).navigator;
    }
  });

  it('reconnects with backoff when EventSource gives up, and resumes after the last id', async () => {
    const client = open('/feed?room=3');
    const notes: string[] = [];
    const errors: SseClientError[] = [];
    const states: string[] = [];
    client.on('note', (text) => notes.push(text));
    client.onError((error) => errors.push(error));
    client.onStateChange((state) => states.push(state));
    await opened(client);
    await hub.broadcastEvent('note', 'before', { filter: { room: '3' } });
    await eventually(() => notes.length === 1, 5000, 'the first note');
    const lastId = client.lastEventId!;
    expect(lastId).toBeTruthy();

    refuse = true;
    for (const stream of hub.streams('/feed')) if (stream.metadata.room === '3') stream.close();
    await eventually(() => errors.some((e) => e.status === 503 && e.retryIn !== undefined), 5000, 'a refused reconnect');
    // published while the client is away: replayed when it comes back
    await hub.broadcastEvent('note', 'while away', { filter: { room: '3' } });
    seen.length = 0;
    refuse = false;

    await eventually(() => notes.length === 2, 5000, 'the missed note');
    expect(notes).toEqual(['before', 'while away']);
    expect(seen.some((url) => new URL(url, 'http://x').searchParams.get('lastEventId') === lastId)).toBe(true);
    expect(states).toContain('connecting');
    expect(client.state).toBe('open');
  });

  it('reports sse.reset through onReset when the id cannot be resumed', async () => {
    const client = open('/feed?room=4', { lastEventId: 'from-another-server-7' });
    const resets: SseResetInfo[] = [];
    client.onReset((info) => resets.push(info));
    await opened(client);
    await eventually(() => resets.length === 1, 5000, 'the reset');
    expect(resets[0]).toEqual({ reason: 'unknown' });
  });

  it('says what to pass for a relative URL, and refuses options that cannot work together', () => {
    expect(() => new SseClient('/feed', { EventSource: ES })).toThrow(/absolute URL/);
    const saved = (globalThis as any).EventSource;
    (globalThis as any).EventSource = undefined;
    try {
      expect(() => new SseClient('http://127.0.0.1:1/feed', { connection: 'event-source' })).toThrow(/pass options\.EventSource/);
    } finally {
      (globalThis as any).EventSource = saved;
    }
    expect(
      () => new SseClient('http://127.0.0.1:1/feed', { EventSource: ES, connection: 'event-source', headers: { a: 'b' } }),
    ).toThrow(/EventSource cannot send headers/);
    expect(() => new SseClient('http://127.0.0.1:1/feed', { headers: { a: 'b' }, share: 'tabs' })).toThrow(
      /cannot be used with headers or query/,
    );
  });

  it('uses one connection of its own in Node by default, even where Node has BroadcastChannel and Web Locks', async () => {
    const locks = { request: (_name: string, _options: unknown, callback: (lock: unknown) => Promise<void>) => callback({}) };
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true });
    try {
      const client = open('/feed?room=6');
      await opened(client);
      expect(client.role).toBe('own');
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete (globalThis as any).navigator;
    }
  });

  it('hands a string event that looks like JSON over as a string when told, with the raw text either way', async () => {
    type Typed = { note: string; count: number };
    const client = open<Typed>('/feed?room=7', { parse: { note: 'text' } });
    const guessing = open<Typed>('/feed?room=7', { share: false });
    const got: Array<[unknown, string]> = [];
    const guessed: unknown[] = [];
    const counts: number[] = [];
    client.on('note', (text, event) => got.push([text, event.raw]));
    client.on('count', (n) => counts.push(n));
    guessing.on('note', (text) => guessed.push(text));
    // type checks only, never called
    (() => {
      // @ts-expect-error 'text' is for events whose data is a string
      void new SseClient<Typed>('http://h/feed', { parse: { count: 'text' } });
    }) satisfies () => void;
    await Promise.all([opened(client), opened(guessing)]);
    await hub.broadcastEvent('note', '42', { filter: { room: '7' } });
    await (hub as SseHub<any>).broadcastEvent('count', 42, { filter: { room: '7' } });
    await eventually(() => counts.length === 1 && guessed.length === 1, 5000, 'the note and the count');
    expect(got).toEqual([['42', '42']]);
    expect(typeof got[0][0]).toBe('string');
    expect(counts).toEqual([42]);
    // without a declaration the wire cannot tell '42' from 42
    expect(guessed).toEqual([42]);
  });
});

/** The bearer guard of the fetch connection tests, and what it saw. */
const USERS: Record<string, string> = { 'alice-token': 'alice', 'bob-token': 'bob' };
const calls: Array<{ url: string; authorization?: string; lastEventId?: string; at: number }> = [];
/** Statuses the guard answers before letting requests through, one per request, with an optional Retry-After. */
const refusals: Array<{ status: number; retryAfter?: string }> = [];

@Injectable()
class BearerGuard implements CanActivate {
  canActivate(context: any): boolean {
    const req = context.switchToHttp().getRequest();
    const res = context.switchToHttp().getResponse();
    calls.push({
      url: req.url,
      authorization: req.headers.authorization,
      lastEventId: req.headers['last-event-id'],
      at: Date.now(),
    });
    const refusal = refusals.shift();
    if (refusal) {
      if (refusal.retryAfter !== undefined) res.header('Retry-After', refusal.retryAfter);
      throw new HttpException('not now', refusal.status);
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const user = token === undefined ? undefined : USERS[token];
    if (user === undefined) throw new UnauthorizedException('Send Authorization: Bearer <token>.');
    req.user = { id: user };
    return true;
  }
}

@SseEndpoint('/private', {
  heartbeatInterval: 0,
  retry: 50,
  trustedMetadata: (req) => ({ user_id: req.user.id }),
  access: { stats: 'public', broadcast: 'disabled' },
  guards: { stream: [BearerGuard] },
})
class PrivateController {}

describe.each(ADAPTERS)('@nest-sse/client fetch connection (%s)', (adapter) => {
  let t: TestApp;
  let hub: SseHub<AppEvents>;
  const clients: SseClient<any>[] = [];
  const open = (options: ConstructorParameters<typeof SseClient>[1] = {}, path = '/private') => {
    const client = new SseClient<AppEvents>(t.url + path, { backoff: { initialDelay: 50, maxDelay: 400 }, ...options });
    clients.push(client);
    return client;
  };
  const opened = (client: SseClient<any>) => eventually(() => client.state === 'open', 5000, 'the client to open');
  const privateClients = async () => (await request(`${t.url}/private/stats`)).body.endpoint_clients as number;
  const toUser = (user: string, text: string) =>
    hub.broadcastEvent('note', text, { endpoint: '/private', filter: { user_id: user } });

  beforeAll(async () => {
    t = await startApp(adapter, {
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [PrivateController],
      providers: [BearerGuard],
    });
    hub = t.app.get(SseHub) as SseHub<AppEvents>;
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    calls.length = 0;
    refusals.length = 0;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('sends the headers a function makes before every connect, and Last-Event-ID after the last id seen', async () => {
    const tokens = ['alice-token', 'alice-token'];
    const made: string[] = [];
    const client = open({
      headers: async () => {
        const token = tokens.shift() ?? 'stale';
        made.push(token);
        return { Authorization: `Bearer ${token}` };
      },
    });
    const notes: string[] = [];
    client.on('note', (text) => notes.push(text));
    await opened(client);
    expect(client.role).toBe('own');
    await toUser('alice', 'first');
    await toUser('bob', 'not for alice');
    await eventually(() => notes.length === 1, 5000, 'the first note');
    const lastId = client.lastEventId!;
    expect(lastId).toMatch(/^\w+-\d+$/);

    for (const stream of hub.streams('/private')) stream.close();
    await eventually(() => calls.length === 2, 5000, 'the reconnect');
    await toUser('alice', 'second');
    await eventually(() => notes.length === 2, 5000, 'the second note');
    expect(notes).toEqual(['first', 'second']);
    expect(made).toEqual(['alice-token', 'alice-token']);
    expect(calls.map((c) => [c.authorization, c.lastEventId])).toEqual([
      ['Bearer alice-token', undefined],
      ['Bearer alice-token', lastId],
    ]);
  });

  it('resumes after a drop with what was missed, sending Last-Event-ID', async () => {
    const client = open({ headers: { Authorization: 'Bearer bob-token' } });
    const notes: string[] = [];
    client.on('note', (text) => notes.push(text));
    await opened(client);
    await toUser('bob', 'before');
    await eventually(() => notes.length === 1, 5000, 'the first note');
    refusals.push({ status: 503 });
    for (const stream of hub.streams('/private')) stream.close();
    // published while the client is away: replayed when it comes back
    await toUser('bob', 'while away');
    await eventually(() => notes.length === 2, 5000, 'the missed note');
    expect(notes).toEqual(['before', 'while away']);
    expect(calls.length).toBe(3);
    expect(calls[2].lastEventId).toBe(calls[1].lastEventId);
  });

  it.each(['fetch', 'event-source'] as const)('stops on 401 and reports the status (%s connection)', async (connection) => {
    const client =
      connection === 'fetch'
        ? open({ headers: { Authorization: 'Bearer wrong' } })
        : open({ connection, EventSource: ES, query: { token: 'none' } });
    const errors: SseClientError[] = [];
    const states: string[] = [];
    client.onError((error) => errors.push(error));
    client.onStateChange((state) => states.push(state));
    await eventually(() => client.state === 'closed', 5000, 'the client to stop');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ status: 401, final: true });
    expect(errors[0].retryIn).toBeUndefined();
    expect(client.stopReason).toEqual(errors[0]);
    if (connection === 'fetch') expect(errors[0].message).toBe('401: Send Authorization: Bearer <token>.');
    expect(states).toEqual(['closed']);
    // eight times the first backoff step: a retry would have come by now
    await sleep(400);
    expect(calls).toHaveLength(1);
  });

  it('stops on 403 and 404 too', async () => {
    refusals.push({ status: 403 });
    const forbidden = open({ headers: { Authorization: 'Bearer alice-token' } });
    const missing = open({ headers: { Authorization: 'Bearer alice-token' } }, '/nowhere');
    await eventually(() => forbidden.state === 'closed' && missing.state === 'closed', 5000, 'both to stop');
    expect([forbidden.stopReason?.status, missing.stopReason?.status]).toEqual([403, 404]);
  });

  it('backs off on 429 and 503, waiting at least what Retry-After asks, then connects', async () => {
    refusals.push({ status: 429 }, { status: 503, retryAfter: '1' });
    const client = open({ headers: { Authorization: 'Bearer alice-token' } });
    const errors: SseClientError[] = [];
    client.onError((error) => errors.push(error));
    await opened(client);
    expect(errors.map((e) => [e.status, e.final])).toEqual([
      [429, undefined],
      [503, undefined],
    ]);
    expect(errors[0].retryIn).toBeGreaterThanOrEqual(25);
    expect(errors[0].retryIn).toBeLessThanOrEqual(50);
    expect(errors[1].retryIn).toBeGreaterThanOrEqual(1000);
    expect(calls).toHaveLength(3);
  });

  it('waits out a Retry-After given as an HTTP date', async () => {
    // an HTTP date has whole seconds: three seconds ahead is more than two away when the guard sends it
    refusals.push({ status: 503, retryAfter: new Date(Date.now() + 3000).toUTCString() });
    const client = open({ headers: { Authorization: 'Bearer alice-token' } });
    const errors: SseClientError[] = [];
    client.onError((error) => errors.push(error));
    await eventually(() => client.state === 'open', 10_000, 'the client to open');
    expect(errors.map((e) => e.status)).toEqual([503]);
    expect(errors[0].retryIn).toBeGreaterThan(1500);
    expect(errors[0].retryIn).toBeLessThanOrEqual(3000);
    expect(calls).toHaveLength(2);
    // the guard saw the refused request before the client had its answer, so the gap is at least
    // the wait (less a few ms of timer and clock rounding)
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(errors[0].retryIn! - 10);
  });

  it('waits no less than a Retry-After beyond what a timer can hold, rather than retrying at once', async () => {
    refusals.push({ status: 429, retryAfter: String(40 * 24 * 3600) });
    const client = open({ headers: { Authorization: 'Bearer alice-token' } });
    const errors: SseClientError[] = [];
    client.onError((error) => errors.push(error));
    await eventually(() => errors.length === 1, 5000, 'the refusal');
    // 2^31 - 1 ms, about 24.8 days: the longest wait setTimeout takes (a longer one fires at once)
    expect(errors[0]).toMatchObject({ status: 429, retryIn: 2_147_483_647 });
    expect(client.state).toBe('connecting');
    // an overflowing timer would have fired within a millisecond or so
    await sleep(300);
    expect(calls).toHaveLength(1);
  });

  it('backs off after a network error, and close() stops it', async () => {
    const port = await freePort();
    const client = new SseClient(`http://127.0.0.1:${port}/private`, {
      headers: { a: 'b' },
      backoff: { initialDelay: 20, maxDelay: 40 },
    });
    clients.push(client);
    const errors: SseClientError[] = [];
    client.onError((error) => errors.push(error));
    await eventually(() => errors.length >= 3, 5000, 'three failed connects');
    expect(client.state).toBe('connecting');
    expect(errors.every((e) => e.status === undefined && e.retryIn !== undefined && e.retryIn <= 40 && !e.final)).toBe(true);
    client.close();
    const seen = errors.length;
    await sleep(200);
    expect(errors.length).toBe(seen);
  });

  it('aborts the request on close(): the server sees the stream go', async () => {
    const before = await privateClients();
    const client = open({ headers: { Authorization: 'Bearer alice-token' } });
    await opened(client);
    expect(await privateClients()).toBe(before + 1);
    client.close();
    await eventually(async () => (await privateClients()) === before, 5000, 'the server to see the stream closed');
    expect(client.state).toBe('closed');
  });

  it('shares one connection among clients with the same headers only', async () => {
    const before = await privateClients();
    const headers = { Authorization: 'Bearer alice-token' };
    const a = open({ headers });
    const b = open({ headers });
    const c = open({ headers: { Authorization: 'Bearer bob-token' } });
    await Promise.all([opened(a), opened(b), opened(c)]);
    expect(await privateClients()).toBe(before + 2);
  });
});
