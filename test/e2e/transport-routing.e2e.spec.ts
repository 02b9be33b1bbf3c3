import { describe, expect, it } from '@jest/globals';
import {
  MemoryTransport,
  SseEndpoint,
  SseHub,
  SseModule,
  SseTransportUnavailableError,
  type OnSseConnect,
  type SseStream,
  type SseTransportContext,
} from '@nest-sse/core';
import { ADAPTERS, connect, eventually, rawGet, startApp } from '../utils/app.js';

@SseEndpoint('/channels', { heartbeatInterval: 0, metadata: { allowedKeys: ['channel'] } })
class ChannelsController {}

/**
 * The in-memory transport, asking to be told which channels this node's connections hold, and
 * keeping the context the hub started it with.
 */
class FollowingTransport extends MemoryTransport {
  readonly routeKeys = ['channel'];
  readonly held = new Set<string>();
  readonly changes: string[] = [];
  started: SseTransportContext | undefined;
  override start(context: SseTransportContext): Promise<void> {
    this.started = context;
    return super.start(context);
  }
  hold(key: string, value: string, held: boolean): void {
    this.changes.push(`${held ? '+' : '-'}${key}=${value}`);
    if (held) this.held.add(value);
    else this.held.delete(value);
  }
}

/** Its connect hook gives every stream the channel `assigned`. */
@SseEndpoint('/assigned', { heartbeatInterval: 0, retry: 4000 })
class AssignedController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    stream.setMetadata('channel', 'assigned');
    stream.send({ event: 'connection', data: 'hello' });
  }
}

/** A routing transport that cannot follow some values now, and makes others wait until released. */
class FollowingLaterTransport extends FollowingTransport {
  readonly asked: string[] = [];
  readonly unavailable = new Set<string>();
  private readonly waiting = new Map<string, () => void>();
  private readonly followed = new Set<string>();
  follow(key: string, values: readonly string[]): Promise<void> {
    this.asked.push(`${key}=${values.join(',')}`);
    if (values.some((v) => this.unavailable.has(v))) {
      return Promise.reject(new SseTransportUnavailableError('Redis is failing over', { retryAfter: 7 }));
    }
    if (!values.includes('slow') || this.followed.has('slow')) return Promise.resolve();
    return new Promise((resolve) => this.waiting.set(values.join(','), resolve));
  }
  release(value: string): void {
    this.followed.add(value);
    this.waiting.get(value)?.();
  }
}

describe.each(ADAPTERS)('A transport with routeKeys (%s)', (adapter) => {
  /** An app on `transport` with the given endpoints, its hub started. */
  async function routingApp(transport: FollowingTransport, controllers: Array<new () => unknown> = [ChannelsController]) {
    const t = await startApp(adapter, { imports: [SseModule.forRoot({ transport, drainTimeout: 0 })], controllers });
    const hub = t.app.get(SseHub);
    await hub.ready;
    return { ...t, hub };
  }

  it("waits until the transport follows a stream's values before the client sees anything, refuses with 503 when it cannot", async () => {
    const transport = new FollowingLaterTransport();
    transport.unavailable.add('down');
    transport.unavailable.add('assigned');
    const t = await routingApp(transport, [ChannelsController, AssignedController]);
    try {
      // the transport cannot follow the value: 503, Retry-After, no stream
      const refused = await fetch(`${t.url}/channels?channel=down`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('7');
      expect(await refused.text()).toMatch(/cannot open now: Redis is failing over/);
      expect(t.hub.localStats().connected).toBe(0);
      // no byte before the transport follows it; then the head, retry and welcome together
      const slow = rawGet(`${t.url}/channels?channel=slow`);
      await eventually(() => transport.asked.includes('channel=slow'), 5000, 'the follow');
      let answered = false;
      void slow.then(() => (answered = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(answered).toBe(false);
      transport.release('slow');
      const stream = await slow;
      expect(stream.status).toBe(200);
      await stream.until((text) => text.includes('event: connection'));
      stream.destroy();
      // a value the connect hook gives: the stream ends with a retry hint of at least Retry-After
      // (what the hook wrote goes first, as when a resuming stream's history is out of reach)
      const sentAway = await rawGet(`${t.url}/assigned`);
      await sentAway.ended;
      expect(sentAway.status).toBe(200);
      expect(Number(/retry: (\d+)/.exec(sentAway.text().split('\n\n').at(-2)!)![1])).toBeGreaterThanOrEqual(7000);
    } finally {
      await t.close();
    }
  });

  it('resolves metadataApplied() of an open stream given a new value only once the transport follows it', async () => {
    const transport = new FollowingLaterTransport();
    transport.unavailable.add('down');
    const t = await routingApp(transport);
    try {
      const client = await connect(t.url, '/channels?channel=news');
      await client.waitFor('connection');
      const stream = [...t.hub.streams('/channels')][0];
      // a value already followed, or none routed: at once
      await stream.metadataApplied();
      stream.setMetadata('channel', 'slow');
      let applied = false;
      const waiting = stream.metadataApplied().then(() => (applied = true));
      await eventually(() => transport.asked.includes('channel=slow'), 5000, 'the follow');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(applied).toBe(false);
      transport.release('slow');
      await waiting;
      expect(applied).toBe(true);
      // a value the transport cannot follow now: the typed error (a 503 in a route that lets it go)
      stream.setMetadata('channel', 'down');
      const err = await stream.metadataApplied().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SseTransportUnavailableError);
      expect((err as SseTransportUnavailableError).getStatus()).toBe(503);
      client.close();
    } finally {
      await t.close();
    }
  });

  it('is told which routed values the connections of its node hold, as they open, change and close', async () => {
    const transport = new FollowingTransport();
    const t = await routingApp(transport);
    const hub = t.hub;
    try {
      const news1 = await connect(t.url, '/channels?channel=news');
      const news2 = await connect(t.url, '/channels?channel=news');
      const sports = await connect(t.url, '/channels?channel=sports');
      expect([...transport.held].sort()).toEqual(['news', 'sports']);
      expect(transport.changes).toEqual(['+channel=news', '+channel=sports']);
      news1.close();
      await eventually(() => hub.localStats().connected === 2, 5000, 'the first news stream to close');
      expect(transport.held.has('news')).toBe(true);
      const stream = [...hub.streams('/channels')].find((s: SseStream) => s.metadata.channel?.includes('sports'))!;
      stream.setMetadata('channel', 'tech');
      expect([...transport.held].sort()).toEqual(['news', 'tech']);
      news2.close();
      sports.close();
      await eventually(() => transport.held.size === 0, 5000, 'every value to be let go');
      expect(transport.changes.slice(0, 4)).toEqual(['+channel=news', '+channel=sports', '-channel=sports', '+channel=tech']);
      expect(transport.changes.slice(4).sort()).toEqual(['-channel=news', '-channel=tech']);
    } finally {
      await t.close();
    }
  });

  it('has the hub send sse.reset (reason lost) to the streams holding that value, in line with their live events', async () => {
    const transport = new FollowingTransport();
    const t = await routingApp(transport);
    const hub = t.hub;
    try {
      const events = ['update', 'sse.reset'];
      const news = await connect(t.url, '/channels?channel=news', { events });
      const both = await connect(t.url, '/channels?channel=news&channel=sports', { events });
      const sports = await connect(t.url, '/channels?channel=sports', { events });
      await hub.broadcast({ event: 'update', data: 'before', filter: { channel: 'news' } });
      transport.started!.lost!('channel', 'news');
      await hub.broadcast({ event: 'update', data: 'after', filter: { channel: ['news', 'sports'] } });
      for (const x of [news, both]) {
        await x.waitFor((e) => e.data === 'after');
        expect(x.events.map((e) => `${e.event} ${e.data}`)).toEqual([
          'update before',
          'sse.reset {"reason":"lost"}',
          'update after',
        ]);
      }
      await sports.waitFor((e) => e.data === 'after');
      expect(sports.events.map((e) => `${e.event} ${e.data}`)).toEqual(['update after']);
      expect(hub.counters.resets).toBe(2);
      // a value no stream holds: nobody to tell
      transport.started!.lost!('channel', 'weather');
      expect(hub.counters.resets).toBe(2);
      for (const x of [news, both, sports]) x.close();
    } finally {
      await t.close();
    }
  });
});
