import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { Redis } from 'ioredis';
import { SseEndpoint, SseHub, SseModule } from '@nest-sse/core';
import { RedisTransport } from '@nest-sse/redis';
import { ADAPTERS, connect, startApp } from '../utils/app.js';
import { RedisServer } from '../utils/redis-server.js';

@SseEndpoint('/events', { access: { stats: 'public' } })
class EventsController {}

@Injectable()
class RedisConfig {
  url = '';
}

@Module({ providers: [RedisConfig], exports: [RedisConfig] })
class ConfigModule {}

/** The transport made by forRootAsync, in an app on each HTTP adapter; closing the app closes what it opened. */
describe.each(ADAPTERS)('RedisTransport through SseModule.forRootAsync over %s', (adapter) => {
  let redis: RedisServer;
  let admin: Redis;

  const transportConnections = async () =>
    String(await admin.client('LIST'))
      .split('\n')
      .filter((line) => /name=nest-sse:/.test(line)).length;

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url);
  });

  afterAll(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('delivers and reports stats with backend redis, and app.close() quits both of its connections', async () => {
    const t = await startApp(adapter, {
      imports: [
        SseModule.forRootAsync({
          imports: [ConfigModule],
          inject: [RedisConfig],
          useFactory: (config: RedisConfig) => ({
            transport: new RedisTransport({ url: config.url || redis.url, prefix: `async_${adapter}` }),
            drainTimeout: 0,
          }),
        }),
      ],
      controllers: [EventsController],
    });
    try {
      expect(await transportConnections()).toBe(2);
      const client = await connect(t.url, '/events');
      await t.app.get(SseHub).broadcast({ data: 'through redis' });
      expect((await client.waitFor('message')).data).toBe('through redis');
      const stats = await (await fetch(`${t.url}/events/stats`)).json();
      expect(stats).toMatchObject({ backend: 'redis', connected_clients: 1 });
      client.close();
    } finally {
      await t.close();
    }
    expect(await transportConnections()).toBe(0);
  });
});
