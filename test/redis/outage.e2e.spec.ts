import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { SseTestClient } from '@nest-sse/testing';
import { connect, eventually, sleep } from '../utils/app.js';
import { RedisServer } from '../utils/redis-server.js';
import { NodeProcess } from './node-process.js';

/** Two nodes on one redis-server that is SIGKILLed and started again while clients stay connected. */
describe('Redis transport through a redis-server crash', () => {
  let redis: RedisServer;
  let a: NodeProcess;
  let b: NodeProcess;
  const clients: SseTestClient[] = [];

  /** Waits until the node's transport reports these values (`/ctl/transport`, its metrics()). */
  async function transportOf(node: NodeProcess, expected: Record<string, number>, what: string, timeout = 10_000): Promise<void> {
    await eventually(
      async () => {
        const metrics = await node.get('/ctl/transport');
        return Object.entries(expected).every(([key, value]) => metrics[key] === value);
      },
      timeout,
      `${what} on ${node.name}`,
    );
  }

  async function client(node: NodeProcess, path = '/events'): Promise<SseTestClient> {
    const c = await connect(node.url, path, { events: ['connection', 'sse.reset'] });
    clients.push(c);
    await c.waitFor('connection');
    return c;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    const env = {
      REDIS_URL: redis.url,
      SSE_PREFIX: 'outage',
      SSE_PUBLISH_TIMEOUT: 20_000,
      SSE_MAX_RECONNECT_DELAY: 300,
      SSE_STATS_INTERVAL: 500,
    };
    [a, b] = await Promise.all([NodeProcess.start('a', env), NodeProcess.start('b', env)]);
  }, 120_000);

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all([a, b].map((node) => node?.stop()));
    await redis?.stop();
  });

  it('survives: local streams stay open and new ones open, a broadcast made meanwhile arrives once Redis is back', async () => {
    const [ca, cb] = await Promise.all([client(a), client(b)]);
    await redis.kill();
    await a.waitForOutput(/Lost Redis|Redis commands connection closed|Redis reader connection closed/);

    // The app answers while Redis is gone: a new stream opens, stats fall back to this node.
    const fresh = await client(a);
    expect((await a.get('/events/stats')).nodes).toHaveLength(1);
    // made once b has seen its connection go, so it waits on b rather than being written to the dead socket
    await transportOf(b, { commands_connected: 0 }, 'the outage');
    const during = b.post('/ctl/broadcast', { data: 'sent during the outage' });
    await transportOf(b, { pending_publishes: 1 }, 'the broadcast to be held');
    await redis.launch();
    expect((await during).reached).toBe(1);
    await Promise.all([ca, cb, fresh].map((c) => c.waitFor((e) => e.data === 'sent during the outage', { timeout: 10_000 })));
    await a.post('/ctl/broadcast', { data: 'after the restart' });
    await Promise.all([ca, cb, fresh].map((c) => c.waitFor((e) => e.data === 'after the restart')));
    for (const c of [ca, cb, fresh]) {
      expect(c.named('message').map((e) => e.data)).toEqual(['sent during the outage', 'after the restart']);
      // the same connection throughout
      expect(c.opens).toBe(1);
    }
    await a.waitForOutput(/Redis is back after \d+ ms/);
  }, 60_000);

  it('delivers every accepted event of 1,000 published while redis-server is down for 5 s: in order, none twice, on every node', async () => {
    const receivers = await Promise.all([client(a), client(a), client(b), client(b)]);
    const bursts = Promise.all([
      a.post('/ctl/burst', { count: 1000, tag: 'a', intervalMs: 6 }),
      b.post('/ctl/burst', { count: 200, tag: 'b', intervalMs: 30 }),
    ]);
    // Redis dies while both bursts are under way, and stays down for 5 s of them
    await Promise.all(receivers.map((c) => c.waitForCount(20, 'message', { timeout: 10_000 })));
    await redis.kill();
    await sleep(5000);
    await redis.launch();
    const [fromA, fromB] = await bursts;
    // publishTimeout (20 s) outlasts the outage: every broadcast was held and then accepted
    expect(fromA.rejected).toEqual([]);
    expect(fromB.rejected).toEqual([]);
    const total = fromA.resolved.length + fromB.resolved.length;
    expect(total).toBe(1200);
    await Promise.all(receivers.map((c) => c.waitForCount(total, 'message', { timeout: 20_000 })));
    // one more from each node: every copy of an earlier event would be read before it
    await a.post('/ctl/broadcast', { data: 'end:a' });
    await b.post('/ctl/broadcast', { data: 'end:b' });
    await Promise.all(receivers.map((c) => c.waitForCount(total + 2, 'message', { timeout: 20_000 })));
    const order = receivers[0]
      .named('message')
      .slice(0, total)
      .map((e) => e.id);
    for (const c of receivers) {
      expect(
        c
          .named('message')
          .slice(total)
          .map((e) => e.data),
      ).toEqual(['end:a', 'end:b']);
      expect(c.named('message')).toHaveLength(total + 2);
      const events = c.named('message').slice(0, total);
      expect(events.filter((e) => e.data.startsWith('a:')).map((e) => e.data)).toEqual(
        fromA.resolved.map((i: number) => `a:${i}`),
      );
      expect(events.filter((e) => e.data.startsWith('b:')).map((e) => e.data)).toEqual(
        fromB.resolved.map((i: number) => `b:${i}`),
      );
      expect(events.map((e) => e.id)).toEqual(order);
      expect(c.opens).toBe(1);
    }
    expect(new Set(order).size).toBe(total);
    for (const node of [a, b]) expect(node.output()).not.toMatch(/were trimmed|was recreated/);
  }, 120_000);

  it('refuses, after publishTimeout, a broadcast it could not send, and says it will not be delivered', async () => {
    // node c waits only 500 ms for Redis
    const c = await NodeProcess.start('c', {
      REDIS_URL: redis.url,
      SSE_PREFIX: 'outage',
      SSE_PUBLISH_TIMEOUT: 500,
      SSE_MAX_RECONNECT_DELAY: 300,
    });
    try {
      const watcher = await client(a);
      await redis.kill();
      // broadcast once c has seen its connection go: one made before would be written to the
      // dead socket and be refused as 'may or may not be delivered' instead
      await transportOf(c, { commands_connected: 0, pending_publishes: 0 }, 'the outage');
      const res = await fetch(`${c.url}/ctl/broadcast`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: 'refused' }),
      });
      // the app's own route lets the rejection go: Nest answers 503 with why (an HttpException)
      expect(res.status).toBe(503);
      expect((await res.json()).message).toMatch(/was not sent and will not be delivered/);
      await redis.launch();
      // c would wait only 500 ms for a connection that is still coming back
      await transportOf(c, { commands_connected: 1 }, 'the reconnection');
      await c.post('/ctl/broadcast', { data: 'accepted' });
      await watcher.waitFor((e) => e.data === 'accepted', { timeout: 10_000 });
      expect(watcher.named('message').map((e) => e.data)).toEqual(['accepted']);
    } finally {
      await c.stop();
    }
  }, 60_000);
});
