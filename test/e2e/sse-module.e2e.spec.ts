import { describe, it, expect } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { MemoryTransport, SseEndpoint, SseHub, SseModule, SseOptionsFactory, SseTransport } from '@nest-sse/core';
import { LocalStreams } from '@nest-sse/core/internal';
import { collectGarbage, connect, eventually, rawGet, startApp } from '../utils/app.js';

@SseEndpoint('/events', { heartbeatInterval: 1 })
class EventsController {}

@Injectable()
class Config {
  readonly historySize = 3;
}

@Module({ providers: [Config], exports: [Config] })
class ConfigModule {}

@Injectable()
class OptionsFactory implements SseOptionsFactory {
  constructor(private readonly config: Config) {}
  createSseOptions() {
    return new MemoryTransport({ historySize: this.config.historySize });
  }
}

describe('SseModule', () => {
  it.each([
    ['forRoot()', () => SseModule.forRoot()],
    ['forRoot(transport)', () => SseModule.forRoot(new MemoryTransport())],
    ['forRoot(options)', () => SseModule.forRoot({ transport: new MemoryTransport(), drainTimeout: 0 })],
    [
      'forRootAsync(useFactory)',
      () =>
        SseModule.forRootAsync({
          imports: [ConfigModule],
          inject: [Config],
          useFactory: async (config: Config) => ({ transport: new MemoryTransport({ historySize: config.historySize }) }),
        }),
    ],
    ['forRootAsync(useClass)', () => SseModule.forRootAsync({ imports: [ConfigModule], useClass: OptionsFactory })],
    [
      'forRootAsync(useExisting)',
      () => SseModule.forRootAsync({ imports: [ConfigModule], extraProviders: [OptionsFactory], useExisting: OptionsFactory }),
    ],
  ])('%s serves an endpoint and broadcasts', async (_name, make) => {
    const t = await startApp('express', { imports: [make()], controllers: [EventsController] });
    try {
      const hub = t.app.get(SseHub);
      await hub.ready;
      expect(t.app.get(SseTransport)).toBeInstanceOf(MemoryTransport);
      const client = await connect(t.url, '/events');
      await hub.broadcast({ data: 'hello' });
      expect((await client.waitFor('message')).data).toBe('hello');
      client.close();
    } finally {
      await t.close();
    }
  });

  it('explains a forRootAsync without a factory', () => {
    expect(() => SseModule.forRootAsync({} as any)).toThrow(/needs useFactory, useClass or useExisting/);
  });

  it('ends every open stream on app.close() and leaves nothing behind', async () => {
    const t = await startApp('express', { imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [EventsController] });
    const hub = t.app.get(SseHub);
    const streams = await Promise.all(Array.from({ length: 20 }, () => rawGet(`${t.url}/events`)));
    await eventually(() => hub.localStats().connected === 20);
    const started = Date.now();
    await t.close();
    await Promise.all(streams.map((s) => s.ended));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(hub.localStats().connected).toBe(0);
    expect(t.app.get(LocalStreams).heartbeats.timers).toBe(0);
  });

  it('releases every stream, heartbeat timer and the heap they held after 1,000 connects and closes', async () => {
    expect(global.gc).toBeDefined();
    const t = await startApp('express', { imports: [SseModule.forRoot()], controllers: [EventsController] });
    const hub = t.app.get(SseHub);
    try {
      let heapBefore = 0;
      // batch 0 warms up code and pools; the heap is measured from the end of it
      for (let batch = 0; batch < 11; batch++) {
        if (batch === 1) {
          collectGarbage();
          heapBefore = process.memoryUsage().heapUsed;
        }
        const streams = await Promise.all(Array.from({ length: 100 }, () => rawGet(`${t.url}/events`)));
        await Promise.all(streams.map((s) => s.until((text) => text.includes('Connected'))));
        expect(hub.localStats().connected).toBe(100);
        for (const s of streams) s.destroy();
        await eventually(() => hub.localStats().connected === 0, 5000, 'streams to be removed');
      }
      expect(hub.counters.opened).toBe(1100);
      expect(hub.counters.closed).toBe(1100);
      expect(t.app.get(LocalStreams).heartbeats.timers).toBe(0);
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      collectGarbage();
      const heapAfter = process.memoryUsage().heapUsed;
      console.log(
        `churn: heap ${(heapBefore / 1e6).toFixed(2)} MB -> ${(heapAfter / 1e6).toFixed(2)} MB after 1,000 connections`,
      );
      // a stream holds about 3 KB of heap (its socket, the SseStream, its index entries): 1,000
      // streams kept by a leak would add about 3 MB, twice this bound
      expect(heapAfter - heapBefore).toBeLessThan(1.5 * 1024 * 1024);
    } finally {
      await t.close();
    }
  });
});
