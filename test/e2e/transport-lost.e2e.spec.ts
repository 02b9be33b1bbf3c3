import { describe, expect, it } from '@jest/globals';
import { MemoryTransport, SseEndpoint, SseHub, SseModule, type SseTransportContext } from '@nest-sse/core';
import { ADAPTERS, connect, startApp } from '../utils/app.js';

@SseEndpoint('/channels', { heartbeatInterval: 0, metadata: { allowedKeys: ['channel'] } })
class ChannelsController {}

/** The in-memory transport, routing by channel, keeping the context the hub started it with. */
class RoutingTransport extends MemoryTransport {
  readonly routeKeys = ['channel'];
  started: SseTransportContext | undefined;
  hold(): void {}
  override start(context: SseTransportContext): Promise<void> {
    this.started = context;
    return super.start(context);
  }
}

describe.each(ADAPTERS)('A routing transport that lost events of a value (%s)', (adapter) => {
  it('has the hub send sse.reset (reason lost) to the streams holding that value, in line with their live events', async () => {
    const transport = new RoutingTransport();
    const t = await startApp(adapter, {
      imports: [SseModule.forRoot({ transport, drainTimeout: 0 })],
      controllers: [ChannelsController],
    });
    try {
      const hub = t.app.get(SseHub);
      await hub.ready;
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
