import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { SseEndpoint, SseHub } from '@nest-sse/core';
import type { SseTestClient } from '@nest-sse/testing';
import { connect, eventually, type TestApp } from '../utils/app.js';
import { startAppOnClient } from '../utils/redis-app.js';
import { RedisSentinelSetup } from '../utils/redis-server.js';

@SseEndpoint('/events', { heartbeatInterval: 0 })
class EventsController {}

/** Two Nest apps on Sentinel-configured clients while the master dies and the replica takes over. */
describe('RedisTransport behind Redis Sentinel', () => {
  let setup: RedisSentinelSetup;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    setup = await RedisSentinelSetup.start('sse-master');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(apps.map((t) => t.close()));
    await setup?.stop();
  });

  async function node(): Promise<TestApp> {
    const client = new Redis({ sentinels: setup.sentinels, name: setup.name });
    // the app owns this client: its errors while the master is gone are the app's to handle
    client.on('error', () => undefined);
    // a slow machine may take longer than the default 10 s to fail over
    const t = await startAppOnClient(client, 'sentinel', [EventsController], { publishTimeout: 30_000 });
    apps.push(t);
    return t;
  }

  it('keeps streams open through a failover and delivers what was broadcast during it, in order', async () => {
    const a = await node();
    const b = await node();
    const client = await connect(b.url, '/events', { events: ['tick'] });
    try {
      await failOver(a, client);
    } finally {
      // a client left open would reconnect to the closed app for ever and keep jest from exiting
      client.close();
    }
  }, 120_000);

  async function failOver(a: TestApp, client: SseTestClient): Promise<void> {
    const hubA = a.app.get(SseHub);
    await hubA.broadcast({ event: 'tick', data: 'before' });
    await client.waitFor((e) => e.data === 'before');

    await setup.master.kill();
    // broadcast while there is no master: held by the transport until the replica is promoted
    const during = hubA.broadcast({ event: 'tick', data: 'during' });
    await eventually(
      async () => (await setup.masterPort()) === setup.replica.port,
      30_000,
      'the sentinel to promote the replica',
    );
    await during;
    await hubA.broadcast({ event: 'tick', data: 'after' });

    await client.waitFor((e) => e.data === 'after', { timeout: 30_000 });
    // with their ids: a repeat with the same id was delivered twice by this node, one with a new
    // id was published twice
    expect(client.named('tick').map((e) => `${e.data} (id ${e.id})`)).toEqual([
      expect.stringMatching(/^before /),
      expect.stringMatching(/^during /),
      expect.stringMatching(/^after /),
    ]);
    // the same stream the whole time: one open, no reset
    expect(client.opens).toBe(1);
    expect(client.named('sse.reset')).toHaveLength(0);
  }
});
