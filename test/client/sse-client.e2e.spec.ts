import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { CanActivate, Injectable, ServiceUnavailableException } from '@nestjs/common';
import { SseEndpoint, SseHub, SseModule } from '@nest-sse/core';
import { SseClient, type SseClientError, type SseClientEvent, type SseResetInfo } from '@nest-sse/client';
import { EventSource } from 'eventsource';
import { eventually, request, startApp, type TestApp } from '../utils/app.js';

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
  const open = <M extends Record<string, any> = AppEvents>(path: string, options: ConstructorParameters<typeof SseClient>[1] = {}) => {
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

  it('says what to pass when there is no EventSource and the URL is relative', () => {
    expect(() => new SseClient('/feed', { EventSource: ES })).toThrow(/absolute URL/);
    const saved = (globalThis as any).EventSource;
    (globalThis as any).EventSource = undefined;
    try {
      expect(() => new SseClient('http://127.0.0.1:1/feed')).toThrow(/pass options\.EventSource/);
    } finally {
      (globalThis as any).EventSource = saved;
    }
  });
});
