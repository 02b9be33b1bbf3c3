import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { Controller, Post } from '@nestjs/common';
import { SseEndpoint, SseHub, SseModule, SseTransportUnavailableError } from '@nest-sse/core';
import { RedisTransport, RedisUnavailableError } from '@nest-sse/redis';
import { ADAPTERS, eventually, postJson, rawGet, startApp, type RawStream, type TestApp } from '../utils/app.js';
import { RedisServer, freePort, rawCommand } from '../utils/redis-server.js';
import { NodeProcess } from './node-process.js';

@SseEndpoint('/events', { heartbeatInterval: 0, welcome: false, access: { stats: 'public', broadcast: 'public' } })
class EventsController {}

/** An app's own route that broadcasts and lets whatever `hub.broadcast` throws go. */
@Controller('notify')
class NotifyController {
  constructor(private readonly hub: SseHub) {}

  @Post()
  async notify(): Promise<{ reached: number }> {
    return { reached: await this.hub.broadcast({ event: 'note', data: 'from a route of the app' }) };
  }
}

/** A broadcast route answer while Redis cannot take it: 503, Retry-After, and why. */
async function expectUnavailable(url: string, why: RegExp, retryAfter: string): Promise<void> {
  const res = await fetch(`${url}/events/broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'refused' }),
  });
  const body = await res.json();
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe(retryAfter);
  expect(body.message).toMatch(/^The broadcast was not published: /);
  expect(body.message).toMatch(why);
}

describe.each(ADAPTERS)('an unavailable Redis, over %s', (adapter) => {
  let redis: RedisServer;
  let t: TestApp;
  let hub: SseHub;
  let stream: RawStream;
  let transport: RedisTransport;

  beforeAll(async () => {
    redis = await RedisServer.start();
    transport = new RedisTransport({
      url: redis.url,
      prefix: `unavailable-${adapter}`,
      publishTimeout: 1000,
      maxReconnectDelay: 200,
    });
    t = await startApp(adapter, {
      imports: [SseModule.forRoot({ transport, drainTimeout: 0 })],
      controllers: [EventsController, NotifyController],
    });
    hub = t.app.get(SseHub);
    stream = await rawGet(`${t.url}/events`);
    await stream.until((text) => text.includes('retry:'));
  }, 30_000);

  afterEach(async () => {
    // every case ends with Redis taking broadcasts again and the stream opened first still there
    const marker = `back ${Math.random()}`;
    await eventually(
      async () => (await postJson(`${t.url}/events/broadcast`, { message: marker })).status === 200,
      10_000,
      'broadcasts to be taken again',
    );
    await stream.until((text) => text.includes(`data: ${marker}`));
    expect(hub.localStats().endpoints['/events'] ?? 0).toBe(1);
  });

  afterAll(async () => {
    stream?.destroy();
    await t?.close();
    await redis?.stop();
  });

  it('answers 503 when Redis does not answer within publishTimeout (SIGSTOP), hub.broadcast rejects with the typed error, an app route that broadcasts answers 503, and a resuming stream is sent away', async () => {
    redis.signal('SIGSTOP');
    try {
      await expectUnavailable(
        t.url,
        /did not confirm this broadcast within 1000 ms \(publishTimeout\)|unreachable for 1000 ms/,
        '1',
      );
      const err = await hub.broadcast({ data: 'in code' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisUnavailableError);
      expect(err).toBeInstanceOf(SseTransportUnavailableError);
      // the app's own route that broadcasts is answered 503 with the reason by Nest, not 500
      const own = await fetch(`${t.url}/notify`, { method: 'POST' });
      expect(own.status).toBe(503);
      expect(await own.json()).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: expect.stringMatching(
          /did not confirm this broadcast within 1000 ms \(publishTimeout\)|unreachable for 1000 ms/,
        ),
      });
      // a resuming stream is not held for ever by a Redis that does not answer: sent away to come back
      const away = await rawGet(`${t.url}/events`, { 'last-event-id': '1-0' });
      await away.ended;
      expect(away.text()).not.toContain('sse.reset');
      expect(away.text()).toMatch(/retry: \d+\n\n$/);
    } finally {
      redis.signal('SIGCONT');
    }
  });

  it('answers 503 while Redis is down (SIGKILL), saying it is unreachable', async () => {
    await redis.kill();
    try {
      // until the transport has seen its connection go, a broadcast is written to the dead socket
      // and answered 'did not confirm' instead: wait for the situation this case is about
      await eventually(() => transport.metrics().commands_connected === 0, 10_000, 'the transport to see Redis gone');
      await expectUnavailable(t.url, /unreachable for 1000 ms.*Last failure: Redis is unreachable \(/, '1');
    } finally {
      await redis.launch();
    }
  });

  it('sends a client resuming while Redis is down away with a retry hint, not a reset, and replays to it once Redis is back', async () => {
    const ids: string[] = [];
    for (const message of ['missed 1', 'missed 2']) {
      expect((await postJson(`${t.url}/events/broadcast`, { message })).status).toBe(200);
      const text = await stream.until((received) => received.includes(`data: ${message}`));
      const frame = text.split('\n\n').find((f) => f.includes(`data: ${message}`))!;
      ids.push(/^id: (.+)$/m.exec(frame)![1]);
    }
    await redis.kill();
    try {
      await eventually(() => transport.metrics().commands_connected === 0, 10_000, 'the transport to see Redis gone');
      // the history is out of reach, not gone: no reset, a retry hint of at least the endpoint's retry
      const away = await rawGet(`${t.url}/events`, { 'last-event-id': ids[0] });
      await away.ended;
      expect(away.status).toBe(200);
      expect(away.text()).not.toContain('sse.reset');
      expect(away.text()).not.toContain('missed 2');
      const hints = [...away.text().matchAll(/^retry: (\d+)$/gm)].map((m) => Number(m[1]));
      expect(hints.at(-1)).toBeGreaterThanOrEqual(3000);
    } finally {
      await redis.launch();
    }
    await eventually(() => transport.metrics().commands_connected === 1, 10_000, 'the transport to be back');
    const back = await rawGet(`${t.url}/events`, { 'last-event-id': ids[0] });
    try {
      await back.until((text) => text.includes('data: missed 2'));
      expect(back.text()).not.toContain('sse.reset');
      expect(back.text()).toContain(`id: ${ids[1]}`);
    } finally {
      back.destroy();
    }
  });

  it('answers 503 when Redis is out of memory (maxmemory with noeviction)', async () => {
    expect(await rawCommand(redis.port, 'CONFIG SET maxmemory-policy noeviction')).toBe('+OK');
    expect(await rawCommand(redis.port, 'CONFIG SET maxmemory 1')).toBe('+OK');
    try {
      await expectUnavailable(t.url, /Redis is out of memory: it reached maxmemory.*\(OOM command not allowed/, '5');
    } finally {
      await rawCommand(redis.port, 'CONFIG SET maxmemory 0');
    }
  });

  it('answers 503 when Redis became a read-only replica, naming READONLY', async () => {
    const master = await RedisServer.start();
    expect(await rawCommand(redis.port, `REPLICAOF 127.0.0.1 ${master.port}`)).toBe('+OK');
    try {
      await eventually(
        async () => (await rawCommand(redis.port, 'SET probe 1')).startsWith('-READONLY'),
        10_000,
        'the replica to refuse writes',
      );
      await expectUnavailable(t.url, /Redis answered READONLY: the connection reaches a read-only replica/, '2');
    } finally {
      await rawCommand(redis.port, 'REPLICAOF NO ONE');
      await master.stop();
    }
  });

  it('answers 503 while Redis is busy running a long script (BUSY)', async () => {
    expect(await rawCommand(redis.port, 'CONFIG SET busy-reply-threshold 50')).toBe('+OK');
    // a script that runs until SCRIPT KILL, on a connection of its own
    const busy = net.connect(redis.port, '127.0.0.1');
    busy.on('error', () => undefined);
    busy.write('EVAL "while true do end" 0\r\n');
    try {
      await eventually(async () => (await rawCommand(redis.port, 'PING')).startsWith('-BUSY'), 10_000, 'Redis to answer BUSY');
      await expectUnavailable(t.url, /Redis is busy running a long script \(BUSY /, '1');
    } finally {
      await rawCommand(redis.port, 'SCRIPT KILL');
      busy.destroy();
      await rawCommand(redis.port, 'CONFIG SET busy-reply-threshold 5000');
    }
  });

  it('never answers 500 while the scripts are flushed again and again (NOSCRIPT storm)', async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const [res] = await Promise.all([
        postJson(`${t.url}/events/broadcast`, { message: `storm ${i}` }),
        rawCommand(redis.port, 'SCRIPT FLUSH'),
      ]);
      statuses.add(res.status);
    }
    expect([...statuses].every((status) => status === 200 || status === 503)).toBe(true);
  });
});

/** The sample's timer-driven publisher, through a Redis outage longer than publishTimeout and a maxmemory refusal. */
describe('sample/02-redis with Redis failing under it', () => {
  const AUTH = { authorization: 'Bearer sample-token' };
  let redis: RedisServer;
  let node: NodeProcess;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const main = new URL('../../sample/02-redis/dist/main.js', import.meta.url).pathname;
    node = await NodeProcess.start(
      'sample',
      {
        REDIS_URL: redis.url,
        PORT: await freePort(),
        SSE_BROADCAST_TOKEN: 'sample-token',
        NEWS_INTERVAL_MS: 200,
        SSE_REDIS_PREFIX: 'sample-outage',
      },
      main,
    );
  }, 30_000);

  afterAll(async () => {
    await node?.stop();
    await redis?.stop();
  });

  /** A news headline reaches a fresh stream, and a broadcast through the route does too. */
  async function servesBroadcasts(message: string): Promise<void> {
    const s = await rawGet(`${node.url}/channels?channel=news`);
    try {
      await s.until((text) => text.includes('event: update'), 15_000);
      const res = await postJson(
        `${node.url}/channels/broadcast`,
        { message, event_type: 'update', filter: { channel: 'news' } },
        AUTH,
      );
      expect(res.status).toBe(200);
      await s.until((text) => text.includes(`data: ${message}`));
    } finally {
      s.destroy();
    }
  }

  it('survives a 20-second outage and a maxmemory refusal, and serves broadcasts again afterwards', async () => {
    await servesBroadcasts('before');
    const down = Date.now();
    await redis.kill();
    // the publisher's broadcasts fail after publishTimeout (10 s by default): logged, not fatal
    await node.waitForOutput(/News broadcast skipped: Redis was unreachable for 10000 ms/, 20_000);
    // the outage lasts 20 s in all
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 20_000 - (Date.now() - down))));
    await redis.launch();
    await servesBroadcasts('after the outage');

    expect(await rawCommand(redis.port, 'CONFIG SET maxmemory-policy noeviction')).toBe('+OK');
    expect(await rawCommand(redis.port, 'CONFIG SET maxmemory 1')).toBe('+OK');
    await node.waitForOutput(/News broadcast skipped: Redis is out of memory/, 10_000);
    const refused = await postJson(`${node.url}/channels/broadcast`, { message: 'refused' }, AUTH);
    expect(refused.status).toBe(503);
    await rawCommand(redis.port, 'CONFIG SET maxmemory 0');
    await servesBroadcasts('after the refusal');
    expect(node.child.exitCode).toBeNull();
  }, 90_000);
});
