import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { SseHub, SseModule } from '@nest-sse/core';
import { ADAPTERS, connect, eventually, postJson, rawGet, request, startApp, type TestApp } from '../utils/app.js';
import { AUTH, CONTROLLERS, NewsService } from './fixtures.js';

describe.each(ADAPTERS)('@SseEndpoint over %s', (adapter) => {
  let t: TestApp;
  let hub: SseHub;

  beforeAll(async () => {
    t = await startApp(adapter, {
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: CONTROLLERS,
      providers: [NewsService],
    });
    hub = t.app.get(SseHub);
  });

  afterAll(async () => {
    await t?.close();
  });

  // the counts below (clients reached, stats) assume no stream of an earlier test is still open
  afterEach(async () => {
    await eventually(() => hub.localStats().connected === 0, 5000, 'the streams of the test to close');
  });

  it('serves the stream with SSE headers, a retry field and the welcome event', async () => {
    const raw = await rawGet(`${t.url}/events`);
    expect(raw.status).toBe(200);
    expect(raw.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(raw.headers['cache-control']).toBe('no-cache, no-transform');
    expect(raw.headers['x-accel-buffering']).toBe('no');
    const text = await raw.until((s) => s.includes('Connected to event stream'));
    expect(text.startsWith('retry: 1500\n\n')).toBe(true);
    expect(text).toContain('event: connection\ndata: Connected to event stream\n\n');
    raw.destroy();
  });

  it('sends heartbeat comments to a silent connection', async () => {
    const raw = await rawGet(`${t.url}/events`);
    await raw.until((s) => s.includes(':\n\n'));
    raw.destroy();
  });

  it('runs onSseConnect with metadata from the query string', async () => {
    const client = await connect(t.url, '/channels?channel=sports&user_id=123');
    const welcome = await client.waitFor('connection');
    expect(welcome.data).toBe('Connected to channel: sports');
    const stream = [...hub.streams('/channels')].find((s) => s.metadata.user_id === '123');
    expect(stream?.metadata).toEqual({ channel: 'sports', user_id: '123' });
    client.close();
  });

  it('turns repeated query keys into a list', async () => {
    const client = await connect(t.url, '/channels?tag=a&tag=b');
    await client.waitFor('connection');
    const stream = [...hub.streams('/channels')].find((s) => Array.isArray(s.metadata.tag));
    expect(stream?.metadata.tag).toEqual(['a', 'b']);
    client.close();
  });

  it('delivers a filtered broadcast from a service only to the matching channel', async () => {
    const news = await connect(t.url, '/channels?channel=news', { events: ['connection', 'update'] });
    const sports = await connect(t.url, '/channels?channel=sports', { events: ['connection', 'update'] });
    const none = await connect(t.url, '/channels', { events: ['connection', 'update'] });
    await Promise.all([news, sports, none].map((c) => c.waitFor('connection')));
    const reached = await t.app.get(NewsService).flash();
    expect(reached).toBe(1);
    expect((await news.waitFor('update')).data).toBe('Breaking news!');
    await hub.broadcast({ event: 'update', data: 'both', filter: { channel: ['news', 'sports'] } });
    expect((await sports.waitFor('update')).data).toBe('both');
    await news.waitFor((e) => e.data === 'both');
    expect(none.named('update')).toHaveLength(0);
    expect(sports.named('update').map((e) => e.data)).toEqual(['both']);
    for (const c of [news, sports, none]) c.close();
  });

  it('gives every recipient the same event id and sends objects as JSON', async () => {
    const a = await connect(t.url, '/events', { events: ['tick'] });
    const b = await connect(t.url, '/events', { events: ['tick'] });
    await hub.broadcastEvent('tick', { n: 1 }, { endpoint: '/events' });
    const [ea, eb] = await Promise.all([a.waitFor('tick'), b.waitFor('tick')]);
    expect(JSON.parse(ea.data)).toEqual({ n: 1 });
    expect(ea.id).toBeTruthy();
    expect(ea.id).toBe(eb.id);
    a.close();
    b.close();
  });

  it('broadcasts through the route with the guard, answering the seed shape', async () => {
    const client = await connect(t.url, '/channels?channel=news', { events: ['connection', 'alert'] });
    await client.waitFor('connection');
    const res = await postJson(
      `${t.url}/channels/broadcast`,
      { message: 'line one\nline two', event_type: 'alert', filter: '{"channel":"news"}' },
      AUTH,
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      endpoint: '/channels',
      endpoint_clients: 1,
      reached_on_this_node: 1,
      node: t.app.get(SseHub).nodeId,
      clients: 1,
      clients_reached: 1,
    });
    expect((await client.waitFor('alert')).data).toBe('line one\nline two');
    client.close();
  });

  it('uses the message event type by default and honours a given id', async () => {
    const client = await connect(t.url, '/events');
    const res = await postJson(`${t.url}/events/broadcast`, { message: { a: 1 }, id: 'evt-42' }, AUTH);
    expect(res.status).toBe(200);
    const msg = await client.waitFor('message');
    expect(msg).toEqual({ event: 'message', data: '{"a":1}', id: 'evt-42' });
    client.close();
  });

  it('answers 401 from the guard for a wrong token', async () => {
    const res = await postJson(`${t.url}/events/broadcast`, { message: 'x' }, { authorization: 'Bearer nope' });
    expect(res.status).toBe(401);
  });

  it('keeps stats and broadcast closed (403) on an endpoint nobody secured', async () => {
    const stats = await request(`${t.url}/open/stats`);
    expect(stats.status).toBe(403);
    expect(stats.body.message).toMatch(/closed by default.*UseGuards.*access/s);
    const res = await postJson(`${t.url}/open/broadcast`, { message: 'x' });
    expect(res.status).toBe(403);
    const client = await connect(t.url, '/open');
    await client.waitFor('connection');
    client.close();
  });

  it('opens stats and broadcast with a class-level guard or a public opt-in', async () => {
    expect((await request(`${t.url}/guarded/stats`)).status).toBe(401);
    expect((await request(`${t.url}/guarded/stats`, { headers: AUTH })).status).toBe(200);
    expect((await request(`${t.url}/public/stats`)).status).toBe(200);
    expect((await postJson(`${t.url}/public/broadcast`, { message: 'x' })).status).toBe(200);
  });

  it.each([
    [{}, /message is required/],
    [[1, 2], /must be a JSON object/],
    [{ message: 'x', event_type: 'a\nid: 666' }, /event_type.*CR, LF or NUL/],
    [{ message: 'x', event_type: '' }, /event_type.*empty/],
    [{ message: 'x', event_type: 5 }, /event_type.*string/],
    [{ message: 'x', id: 'a\rb' }, /id.*CR, LF or NUL/],
    [{ message: 'x', filter: 'not json' }, /filter.*not valid JSON/],
    [{ message: 'x', filter: [1] }, /filter must be an object/],
    [{ message: 'x', filter: { channel: { $ne: 1 } } }, /filter\.channel must be/],
    [{ message: 'x', evnt_type: 'a' }, /Unknown field 'evnt_type'/],
  ])('answers 400 naming the problem for %j', async (body, message) => {
    const res = await postJson(`${t.url}/channels/broadcast`, body, AUTH);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });

  it('answers 400 for malformed JSON', async () => {
    const res = await postJson(`${t.url}/channels/broadcast`, '{"message": ', AUTH);
    expect(res.status).toBe(400);
  });

  it('answers 413 for a body over the limit and 415 for a non-JSON content type', async () => {
    const big = await postJson(`${t.url}/channels/broadcast`, { message: 'x'.repeat(2000) }, AUTH);
    expect(big.status).toBe(413);
    const text = await request(`${t.url}/channels/broadcast`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...AUTH },
      body: 'hello',
    });
    expect(text.status).toBe(415);
  });

  it('takes a broadcast whose Content-Type is a +json type (application/vnd.api+json), with parameters', async () => {
    const client = await connect(t.url, '/channels?channel=plus-json');
    await client.waitFor('connection');
    for (const type of ['application/vnd.api+json', 'application/merge-patch+json; charset=utf-8', 'Application/JSON']) {
      const res = await request(`${t.url}/channels/broadcast`, {
        method: 'POST',
        headers: { 'content-type': type, ...AUTH },
        body: JSON.stringify({ message: type, filter: { channel: 'plus-json' } }),
      });
      expect({ type, status: res.status }).toEqual({ type, status: 200 });
      await client.waitFor((e) => e.data === type);
    }
    client.close();
  });

  it('never writes an injected field: a newline in an event name is refused in code too', async () => {
    await expect(hub.broadcast({ event: 'x\ndata: injected', data: 'y' })).rejects.toThrow(/CR, LF or NUL/);
  });

  it('answers 400 when metadata breaks the limits', async () => {
    expect((await request(`${t.url}/channels?a=1&b=2&c=3&d=4`)).status).toBe(400);
    const long = await request(`${t.url}/channels?channel=${'x'.repeat(21)}`);
    expect(long.status).toBe(400);
    expect(long.body.message).toMatch(/limit is 20/);
    expect((await request(`${t.url}/channels?__proto__=1`)).status).toBe(400);
    expect((await request(`${t.url}/channels?a%5Bb%5D=1`)).status).toBe(400);
  });

  it('runs class-level interceptors on the generated routes', async () => {
    const raw = await rawGet(`${t.url}/stamped`);
    expect(raw.headers['x-stamp']).toBe('yes');
    await raw.until((text) => text.includes('Connected'));
    raw.destroy();
    const stats = await request(`${t.url}/stamped/stats`);
    expect(stats.body.stamped).toBe(true);
  });

  it('counts connections in stats as they come and go', async () => {
    const before = (await request(`${t.url}/events/stats`, { headers: AUTH })).body;
    expect(before.backend).toBe('memory');
    expect(before.connected_clients).toBe(0);
    const clients = await Promise.all([connect(t.url, '/events'), connect(t.url, '/events'), connect(t.url, '/channels')]);
    const during = (await request(`${t.url}/events/stats`, { headers: AUTH })).body;
    expect(during.connected_clients).toBe(before.connected_clients + 3);
    expect(during.endpoint_clients).toBe((before.endpoints['/events'] ?? 0) + 2);
    expect(during.endpoints['/channels']).toBe((before.endpoints['/channels'] ?? 0) + 1);
    expect(typeof during.timestamp).toBe('string');
    expect(JSON.stringify(during)).not.toMatch(/127\.0\.0\.1/);
    for (const c of clients) c.close();
    await eventually(
      async () => (await request(`${t.url}/events/stats`, { headers: AUTH })).body.connected_clients === before.connected_clients,
    );
  });
});
