import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { SseTestClient } from '@nest-sse/testing';
import { connect, eventually } from '../utils/app.js';
import { RedisServer } from '../utils/redis-server.js';
import { NodeProcess } from './node-process.js';

/**
 * Routed delivery (`routeBy: 'channel'`): three nodes of one app on one redis-server, real SSE
 * clients on each. A node follows only the channels its clients hold; clients holding a channel
 * get cursor ids and resume from them on any node.
 */
describe('Redis transport with routed delivery', () => {
  let redis: RedisServer;
  let admin: Redis;
  let a: NodeProcess;
  let b: NodeProcess;
  let c: NodeProcess;
  const clients: SseTestClient[] = [];
  const PREFIX = 'routed_app';

  async function client(node: NodeProcess, path: string, headers?: Record<string, string>): Promise<SseTestClient> {
    const x = await connect(node.url, path, { events: ['connection', 'sse.reset', 'update', 'alert'], headers });
    clients.push(x);
    await x.waitFor('connection');
    return x;
  }

  const data = (x: SseTestClient, event = 'update') => x.named(event).map((e) => e.data);
  /** Nodes subscribed to a channel's shard channel (the escaped value under the prefix's route tag). */
  const followers = async (channel: string) =>
    Number(((await admin.call('PUBSUB', 'SHARDNUMSUB', `{${PREFIX}/${channel}}:live`)) as unknown[])[1]);
  const publish = (node: NodeProcess, body: Record<string, unknown>) => node.post('/ctl/broadcast', { event: 'update', ...body });

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url);
    const env = {
      REDIS_URL: redis.url,
      SSE_PREFIX: PREFIX,
      SSE_ROUTE_BY: 'channel',
      SSE_CLEANUP_INTERVAL: 2,
      SSE_STATS_INTERVAL: 200,
    };
    [a, b, c] = await Promise.all([NodeProcess.start('a', env), NodeProcess.start('b', env), NodeProcess.start('c', env)]);
  }, 120_000);

  afterEach(() => {
    for (const x of clients.splice(0)) x.close();
  });

  afterAll(async () => {
    for (const x of clients.splice(0)) x.close();
    admin?.disconnect();
    await Promise.all([a, b, c].map((node) => node?.stop()));
    await redis?.stop();
  });

  it('delivers a channel only to the nodes holding it, once, in order; the others never subscribe to it', async () => {
    const onA = await client(a, '/channels?channel=r1-news');
    const onB = await client(b, '/channels?channel=r1-sports');
    const plainC = await client(c, '/channels');
    expect(await followers('r1-news')).toBe(1);
    expect(await followers('r1-sports')).toBe(1);
    const burst = await c.post('/ctl/burst', { count: 200, tag: 'n', event: 'update', filter: { channel: 'r1-news' } });
    expect(burst.rejected).toEqual([]);
    await publish(c, { data: 's', filter: { channel: 'r1-sports' } });
    await onA.waitForCount(200, 'update', { timeout: 20_000 });
    await onB.waitFor('update');
    expect(data(onA)).toEqual(Array.from({ length: 200 }, (_, i) => `n:${i}`));
    expect(data(onB)).toEqual(['s']);
    expect(data(plainC)).toEqual([]);
    // b and c hold no client of r1-news: they follow nothing of it
    const [ta, tb, tc] = await Promise.all([a, b, c].map((n) => n.get('/ctl/transport')));
    expect(ta.routed_values).toBe(1);
    expect(tb.routed_values).toBe(1);
    expect(tc.routed_values).toBe(0);
    // cursor ids: from the value's Stream (index 0), the main position, a tag, the value's position
    expect(onA.named('update')[0].id).toMatch(/^0\.\d+-\d+\.[0-9a-f]{8}\.\d+-\d+$/);
  });

  it('lets a node go of a channel once its last client has left (after the linger)', async () => {
    const x = await client(b, '/channels?channel=r2-gone');
    expect(await followers('r2-gone')).toBe(1);
    x.close();
    await eventually(async () => (await followers('r2-gone')) === 0, 15_000, 'the unsubscribe');
  });

  it('reaches every client from a broadcast without the key, with plain ids for clients holding none', async () => {
    const holders = await Promise.all([a, b, c].map((n, i) => client(n, `/channels?channel=r3-${i}`)));
    const plain = await client(b, '/channels?tag=plain');
    await publish(a, { data: 'everyone', endpoint: '/channels' });
    const got = await Promise.all([...holders, plain].map((x) => x.waitFor('update')));
    expect(got.map((e) => e.data)).toEqual(['everyone', 'everyone', 'everyone', 'everyone']);
    for (const e of got.slice(0, 3)) expect(e.id).toMatch(/^m\./);
    expect(got[3].id).toMatch(/^\d+-\d+$/);
  });

  it('gives a client holding several channels a broadcast to several of them once', async () => {
    const both = await client(a, '/channels?channel=r4-x&channel=r4-y');
    const onlyY = await client(b, '/channels?channel=r4-y');
    await publish(c, { data: 'to both', filter: { channel: ['r4-x', 'r4-y'] } });
    await publish(c, { data: 'y only', filter: { channel: 'r4-y' } });
    await publish(c, { data: 'x only', filter: { channel: 'r4-x' } });
    await both.waitFor((e) => e.data === 'x only');
    await onlyY.waitFor((e) => e.data === 'y only');
    expect(data(both).sort()).toEqual(['to both', 'x only', 'y only']);
    expect(data(onlyY)).toEqual(['to both', 'y only']);
  });

  it('publishes to a channel no node holds without waiting for an echo', async () => {
    const started = Date.now();
    expect(await publish(a, { data: 'nobody', filter: { channel: 'r5-empty' } })).toEqual({ reached: 0 });
    // the hub would otherwise wait for its own node to deliver it, up to 10 s
    expect(Date.now() - started).toBeLessThan(5000);
    // the node publishing follows what its own clients hold: it counts them
    await client(a, '/channels?channel=r5-held');
    expect(await publish(a, { data: 'held', filter: { channel: 'r5-held' } })).toEqual({ reached: 1 });
  });

  it('delivers what is published as soon as the client is open, on a channel no node followed before', async () => {
    for (let i = 0; i < 5; i++) {
      const x = await client(b, `/channels?channel=r6-new${i}`);
      await publish(c, { data: `first ${i}`, filter: { channel: `r6-new${i}` } });
      await x.waitFor('update');
      expect(data(x)).toEqual([`first ${i}`]);
    }
  });

  it('resumes on another node from the cursor, what it missed from every Stream it reads, in order, none twice', async () => {
    const first = await client(a, '/channels?channel=r7-news&channel=r7-tech');
    await publish(b, { data: 'v1', filter: { channel: 'r7-news' } });
    await publish(b, { data: 'm1', endpoint: '/channels' });
    await publish(b, { data: 't1', filter: { channel: 'r7-tech' } });
    await first.waitForCount(3, 'update');
    const lastId = first.named('update')[2].id;
    first.close();
    // missed: from the main Stream and both channels' Streams, and one for both channels
    const missed = ['v2', 'm2', 't2', 'both', 'm3', 'v3'];
    await publish(c, { data: 'v2', filter: { channel: 'r7-news' } });
    await publish(c, { data: 'm2', endpoint: '/channels' });
    await publish(c, { data: 't2', filter: { channel: 'r7-tech' } });
    await publish(c, { data: 'both', filter: { channel: ['r7-news', 'r7-tech'] } });
    await publish(c, { data: 'm3', endpoint: '/channels' });
    await publish(c, { data: 'v3', filter: { channel: 'r7-news' } });
    const lives: string[] = [];
    for (const node of [a, b, c]) {
      const back = await client(node, '/channels?channel=r7-news&channel=r7-tech', { 'last-event-id': lastId });
      // what the clients before it were sent live is history after the cursor too
      await back.waitForCount(missed.length + lives.length, 'update', { timeout: 10_000 });
      const live = `live ${lives.length}`;
      lives.push(live);
      await publish(node, { data: live, filter: { channel: 'r7-tech' } });
      await back.waitFor((e) => e.data === live);
      expect(back.named('sse.reset')).toEqual([]);
      // one Stream's order holds; across Streams the replay follows their ids, as they were published here
      expect(data(back)).toEqual([...missed, ...lives]);
      back.close();
    }
  });

  it('resets a client whose cursor names other channels, or that brings a plain id to a channel', async () => {
    const x = await client(a, '/channels?channel=r8-one');
    await publish(b, { data: 'one', filter: { channel: 'r8-one' } });
    const cursor = (await x.waitFor('update')).id;
    x.close();
    const other = await client(b, '/channels?channel=r8-two', { 'last-event-id': cursor });
    await other.waitFor('sse.reset');
    const plainId = await client(c, '/channels?channel=r8-one', { 'last-event-id': '1-0' });
    await plainId.waitFor('sse.reset');
    // and one holding no channel that brings a cursor
    const none = await client(c, '/channels', { 'last-event-id': cursor });
    await none.waitFor('sse.reset');
  });

  it('keeps order per channel over 500 events from three publishers, each client getting its channel once', async () => {
    const receivers = await Promise.all([a, b, c].map((n) => client(n, '/channels?channel=r9-load')));
    const results = await Promise.all(
      [a, b, c].map((n, i) =>
        n.post('/ctl/burst', { count: 500, tag: `p${i}`, event: 'update', filter: { channel: 'r9-load' } }),
      ),
    );
    for (const r of results) expect(r.rejected).toEqual([]);
    await Promise.all(receivers.map((x) => x.waitForCount(1500, 'update', { timeout: 30_000 })));
    const orders = receivers.map((x) => x.named('update').map((e) => e.data));
    for (const order of orders) {
      expect(new Set(order).size).toBe(1500);
      for (const tag of ['p0', 'p1', 'p2']) {
        expect(order.filter((d) => d.startsWith(`${tag}:`))).toEqual(Array.from({ length: 500 }, (_, i) => `${tag}:${i}`));
      }
    }
    // one Stream per channel: every node delivers it in the same order
    expect(orders[1]).toEqual(orders[0]);
    expect(orders[2]).toEqual(orders[0]);
  });

  it('fills from the Stream what a node missed while Redis cut its subscriber connection: none lost, none twice', async () => {
    const x = await client(a, '/channels?channel=r10-cut');
    const filledBefore = (await a.get('/ctl/transport')).routed_filled;
    const burst = c.post('/ctl/burst', { count: 300, tag: 'c', event: 'update', intervalMs: 5, filter: { channel: 'r10-cut' } });
    await x.waitForCount(50, 'update', { timeout: 10_000 });
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect((await burst).rejected).toEqual([]);
    await x.waitForCount(300, 'update', { timeout: 20_000 });
    expect(data(x)).toEqual(Array.from({ length: 300 }, (_, i) => `c:${i}`));
    expect(x.named('sse.reset')).toEqual([]);
    // what was published while the subscriber was away came from the Stream
    expect((await a.get('/ctl/transport')).routed_filled).toBeGreaterThan(filledBefore);
  });

  it('resets rather than replays in part a client holding more values than its cursor can carry', async () => {
    const many = Array.from({ length: 8 }, (_, i) => `r11-${i}`);
    for (const channel of many) await publish(b, { data: 'before', filter: { channel } });
    const x = await client(a, `/channels?${many.map((ch) => `channel=${ch}`).join('&')}`);
    await publish(b, { data: 'seen', filter: { channel: many[7] } });
    const seen = await x.waitFor('update');
    expect(seen.id.length).toBeLessThanOrEqual(128);
    x.close();
    await publish(b, { data: 'missed', filter: { channel: many[0] } });
    const back = await client(c, `/channels?${many.map((ch) => `channel=${ch}`).join('&')}`, { 'last-event-id': seen.id });
    await back.waitFor('sse.reset');
    expect(data(back)).toEqual([]);
    // a client holding three values, each with history, still resumes
    const three = many.slice(0, 3);
    const y = await client(a, `/channels?${three.map((ch) => `channel=${ch}`).join('&')}`);
    await publish(b, { data: 'three', filter: { channel: three[2] } });
    const last = await y.waitFor('update');
    y.close();
    await publish(b, { data: 'three again', filter: { channel: three[1] } });
    const again = await client(b, `/channels?${three.map((ch) => `channel=${ch}`).join('&')}`, { 'last-event-id': last.id });
    await again.waitFor('update');
    expect(data(again)).toEqual(['three again']);
    expect(again.named('sse.reset')).toEqual([]);
  });

  it('reaches a stream moved to a channel no node followed from the moment metadataApplied() resolves', async () => {
    const x = await client(a, '/channels?tag=r13');
    for (let i = 0; i < 5; i++) {
      const channel = `r13-moved-${i}`;
      expect(await followers(channel)).toBe(0);
      expect(await a.post('/ctl/move', { tag: 'r13', channel, applied: true })).toEqual({ moved: true });
      // resolved: node a is subscribed to the channel, and a broadcast made now from another node reaches it
      expect(await followers(channel)).toBe(1);
      await publish(b, { data: `moved ${i}`, filter: { channel } });
      await x.waitFor((e) => e.data === `moved ${i}`);
    }
    expect(data(x)).toEqual([0, 1, 2, 3, 4].map((i) => `moved ${i}`));
  });

  it('follows the values a connect hook gives the stream before the client sees it open', async () => {
    for (let i = 0; i < 5; i++) {
      const x = await client(a, `/assigned?tag=r12-${i}`);
      await publish(b, { data: `to ${i}`, filter: { channel: `assigned-r12-${i}` } });
      await x.waitFor('update');
      expect(data(x)).toEqual([`to ${i}`]);
    }
  });
});
