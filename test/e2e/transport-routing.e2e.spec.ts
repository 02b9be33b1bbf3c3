import { describe, expect, it } from '@jest/globals';
import { MemoryTransport, SseEndpoint, SseHub, SseModule, type SseStream } from '@nest-sse/core';
import { ADAPTERS, connect, eventually, startApp } from '../utils/app.js';

@SseEndpoint('/channels', { heartbeatInterval: 0, metadata: { allowedKeys: ['channel'] } })
class ChannelsController {}

/** The in-memory transport, asking to be told which channels this node's connections hold. */
class FollowingTransport extends MemoryTransport {
  readonly routeKeys = ['channel'];
  readonly held = new Set<string>();
  readonly changes: string[] = [];
  hold(key: string, value: string, held: boolean): void {
    this.changes.push(`${held ? '+' : '-'}${key}=${value}`);
    if (held) this.held.add(value);
    else this.held.delete(value);
  }
}

describe.each(ADAPTERS)('A transport with routeKeys (%s)', (adapter) => {
  it('is told which routed values the connections of its node hold, as they open, change and close', async () => {
    const transport = new FollowingTransport();
    const t = await startApp(adapter, {
      imports: [SseModule.forRoot({ transport, drainTimeout: 0 })],
      controllers: [ChannelsController],
    });
    try {
      const hub = t.app.get(SseHub);
      await hub.ready;
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
});
