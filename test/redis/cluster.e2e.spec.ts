import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { SseTestClient } from '@nest-sse/testing';
import { connect, eventually } from '../utils/app.js';
import { RedisServer } from '../utils/redis-server.js';
import { NodeProcess, requestWaiting, within } from './node-process.js';

/**
 * Three nodes (a, b, c) of one app on one redis-server, a fourth (d) of another app (another
 * prefix) on the same server; real SSE clients on each.
 */
describe('Redis transport across nodes', () => {
  let redis: RedisServer;
  let admin: Redis;
  let a: NodeProcess;
  let b: NodeProcess;
  let c: NodeProcess;
  let d: NodeProcess;
  const clients: SseTestClient[] = [];

  async function client(node: NodeProcess, path: string, headers?: Record<string, string>): Promise<SseTestClient> {
    const c = await connect(node.url, path, { events: ['connection', 'sse.reset', 'update', 'alert', 'private'], headers });
    clients.push(c);
    await c.waitFor('connection');
    return c;
  }

  const data = (c: SseTestClient, event = 'message') => c.named(event).map((e) => e.data);

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url);
    const common = { REDIS_URL: redis.url, SSE_CLEANUP_INTERVAL: 2, SSE_STATS_INTERVAL: 200 };
    [a, b, c, d] = await Promise.all([
      NodeProcess.start('a', { ...common, SSE_PREFIX: 'app_one' }),
      NodeProcess.start('b', { ...common, SSE_PREFIX: 'app_one' }),
      NodeProcess.start('c', { ...common, SSE_PREFIX: 'app_one' }),
      NodeProcess.start('d', { ...common, SSE_PREFIX: 'app_two', SSE_HISTORY_SIZE: 50 }),
    ]);
  }, 120_000);

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    admin?.disconnect();
    await Promise.all([a, b, c, d].map((node) => node?.stop()));
    await redis?.stop();
  });

  it('delivers a broadcast from SseHub on one node to every node exactly once, with one id', async () => {
    const [ca, cb, cc] = await Promise.all([client(a, '/events'), client(b, '/events'), client(c, '/events')]);
    const { reached } = await a.post('/ctl/broadcast', { data: 'hello all', endpoint: '/events' });
    expect(reached).toBe(1);
    const got = await Promise.all([ca, cb, cc].map((x) => x.waitFor('message')));
    expect(got.map((e) => e.data)).toEqual(['hello all', 'hello all', 'hello all']);
    expect(new Set(got.map((e) => e.id)).size).toBe(1);
    expect(got[0].id).toMatch(/^\d+-\d+$/);
    // a second copy would come before a later broadcast of the same node
    await a.post('/ctl/broadcast', { data: 'end', endpoint: '/events' });
    await Promise.all([ca, cb, cc].map((x) => x.waitFor((e) => e.data === 'end')));
    for (const x of [ca, cb, cc]) expect(data(x)).toEqual(['hello all', 'end']);
  });

  it('counts connection limits across the cluster', async () => {
    const status = async (node: NodeProcess, path: string) => {
      const res = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(2000) });
      void res.body?.cancel();
      return res.status;
    };
    await client(a, '/limited?user_id=u1');
    await client(b, '/limited?user_id=u1');
    // the other node's count reaches Redis within statsInterval and is read at most a second later
    await eventually(async () => (await status(c, '/limited?user_id=u1')) === 429, 10_000, 'the per-user limit across nodes');
    await client(c, '/limited?user_id=u2');
    await eventually(async () => (await status(a, '/limited?user_id=u3')) === 429, 10_000, 'the endpoint limit across nodes');
  });

  it('applies filters on every node, from SseHub and from the broadcast route', async () => {
    const news = await Promise.all([a, b, c].map((n) => client(n, '/channels?channel=news')));
    const sports = await Promise.all([a, b, c].map((n) => client(n, '/channels?channel=sports')));
    await b.post('/ctl/broadcast', { event: 'update', data: 'news only', filter: { channel: 'news' } });
    const res = await c.post('/channels/broadcast', {
      message: 'sports alert',
      event_type: 'alert',
      filter: { channel: 'sports' },
    });
    expect(res).toMatchObject({ success: true, clients_reached: 1 });
    // endpoint_clients counts the endpoint's streams on every node (each node's counts reach Redis within statsInterval)
    await eventually(
      async () =>
        (await c.post('/channels/broadcast', { message: 'count', event_type: 'count', filter: { channel: 'none' } }))
          .endpoint_clients === 6,
      10_000,
      'the cluster-wide endpoint count in the broadcast response',
    );
    await Promise.all(news.map((x) => x.waitFor('update')));
    await Promise.all(sports.map((x) => x.waitFor('alert')));
    await b.post('/ctl/broadcast', { event: 'update', data: 'both', filter: { channel: ['news', 'sports'] } });
    await Promise.all([...news, ...sports].map((x) => x.waitFor((e) => e.data === 'both')));
    for (const x of news) expect(data(x, 'update')).toEqual(['news only', 'both']);
    for (const x of news) expect(data(x, 'alert')).toEqual([]);
    for (const x of sports) expect(data(x, 'update')).toEqual(['both']);
    for (const x of sports) expect(data(x, 'alert')).toEqual(['sports alert']);
  });

  it("keeps each publisher's order over 1,000 events, the same total order everywhere, none twice", async () => {
    const receivers = await Promise.all([a, a, b, c].map((n) => client(n, '/events')));
    const [fromA, fromB] = await Promise.all([
      a.post('/ctl/burst', { count: 1000, tag: 'a', endpoint: '/events' }),
      b.post('/ctl/burst', { count: 1000, tag: 'b', endpoint: '/events' }),
    ]);
    expect(fromA.rejected).toEqual([]);
    expect(fromB.rejected).toEqual([]);
    await Promise.all(receivers.map((x) => x.waitForCount(2000, 'message', { timeout: 20_000 })));
    // one more from each publisher: a second copy of any earlier event would be read before it
    await a.post('/ctl/broadcast', { data: 'end:a', endpoint: '/events' });
    await b.post('/ctl/broadcast', { data: 'end:b', endpoint: '/events' });
    await Promise.all(receivers.map((x) => x.waitForCount(2002, 'message', { timeout: 20_000 })));
    for (const x of receivers) {
      expect(x.named('message')).toHaveLength(2002);
      expect(
        x
          .named('message')
          .slice(2000)
          .map((e) => e.data),
      ).toEqual(['end:a', 'end:b']);
    }
    const orders = receivers.map((x) => x.named('message').slice(0, 2000));
    for (const events of orders) {
      for (const tag of ['a', 'b']) {
        expect(events.filter((e) => e.data.startsWith(`${tag}:`)).map((e) => e.data)).toEqual(
          Array.from({ length: 1000 }, (_, i) => `${tag}:${i}`),
        );
      }
      expect(new Set(events.map((e) => e.id)).size).toBe(2000);
    }
    const ids = orders[0].map((e) => e.id);
    for (const events of orders.slice(1)) expect(events.map((e) => e.id)).toEqual(ids);
  }, 80_000);

  it('sends to one connection on another node, and only to it', async () => {
    const target = await client(c, '/channels?channel=news&tag=target');
    const other = await client(c, '/channels?channel=news');
    const streams: Array<{ id: string; metadata: Record<string, string> }> = await c.get('/ctl/streams');
    const id = streams.find((s) => s.metadata.tag === 'target')!.id;
    expect(await a.post('/ctl/send', { connection: id, event: 'private', data: 'just you' })).toEqual({ sent: true });
    expect((await target.waitFor('private')).data).toBe('just you');
    // the other connection gets a later broadcast of the same node, and nothing before it
    await a.post('/ctl/broadcast', { event: 'private', data: 'to all', endpoint: '/channels' });
    await other.waitFor('private');
    await target.waitFor((e) => e.data === 'to all');
    expect(data(other, 'private')).toEqual(['to all']);
    expect(data(target, 'private')).toEqual(['just you', 'to all']);
  });

  it('keeps two prefixes on one Redis apart', async () => {
    const one = await client(a, '/events');
    const two = await client(d, '/events');
    await d.post('/ctl/broadcast', { data: 'for app two' });
    await a.post('/ctl/broadcast', { data: 'for app one' });
    // each app's next broadcast arrives after anything of the other app that might have leaked
    await d.post('/ctl/broadcast', { data: 'end two' });
    await a.post('/ctl/broadcast', { data: 'end one' });
    await one.waitFor((e) => e.data === 'end one');
    await two.waitFor((e) => e.data === 'end two');
    expect(data(one)).toEqual(['for app one', 'end one']);
    expect(data(two)).toEqual(['for app two', 'end two']);
    const stats = await d.get('/events/stats');
    expect(stats.nodes).toHaveLength(1);
  });

  it('drops and logs junk on the Stream, and goes on delivering', async () => {
    const x = await client(b, '/events');
    const key = '{app_one}:events'; // the key names packages/redis/README.md gives
    await admin.xadd(key, '*', 'hello', 'world');
    await admin.xadd(key, '*', 'e', '{"data":"trunca');
    await a.post('/ctl/broadcast', { data: 'after junk' });
    expect((await x.waitFor('message')).data).toBe('after junk');
    for (const node of [a, b, c]) {
      await node.waitForOutput(/Dropped Stream entry \d+-\d+ of \{app_one\}:events: no 'e' field/);
      await node.waitForOutput(/Dropped Stream entry \d+-\d+ of \{app_one\}:events: not JSON/);
    }
    expect(d.output()).not.toMatch(/Dropped Stream entry/);
  });

  describe('replay', () => {
    it('gives a client that reconnects to the same node, or another, what it missed, in order, none twice', async () => {
      const first = await client(a, '/channels?channel=news');
      const seen = [] as string[];
      for (let i = 0; i < 3; i++)
        await b.post('/ctl/broadcast', { event: 'update', data: `before ${i}`, filter: { channel: 'news' } });
      await first.waitForCount(3, 'update');
      const lastId = first.named('update')[2].id;
      seen.push(...data(first, 'update'));
      first.close();

      // Missed: news events, a sports event, and a targeted send to someone else.
      const bystander = await client(c, '/channels?channel=news&tag=bystander');
      const streams: Array<{ id: string; metadata: Record<string, string> }> = await c.get('/ctl/streams');
      const bystanderId = streams.find((s) => s.metadata.tag === 'bystander')!.id;
      for (let i = 0; i < 5; i++) {
        await c.post('/ctl/broadcast', { event: 'update', data: `missed ${i}`, filter: { channel: 'news' } });
        if (i === 1)
          await c.post('/ctl/broadcast', { event: 'update', data: 'sports, not for news', filter: { channel: 'sports' } });
        if (i === 2) await a.post('/ctl/send', { connection: bystanderId, event: 'update', data: 'for the bystander only' });
      }
      await bystander.waitFor((e) => e.data === 'missed 4');

      for (const node of [a, b]) {
        const back = await client(node, '/channels?channel=news', { 'last-event-id': lastId });
        await back.waitFor((e) => e.data === 'missed 4');
        await b.post('/ctl/broadcast', { event: 'update', data: `live after ${node.name}`, filter: { channel: 'news' } });
        await back.waitFor((e) => e.data === `live after ${node.name}`);
        const expected = ['missed 0', 'missed 1', 'missed 2', 'missed 3', 'missed 4'];
        if (node === b) expected.push('live after a');
        expected.push(`live after ${node.name}`);
        expect(data(back, 'update')).toEqual(expected);
        expect(back.named('sse.reset')).toHaveLength(0);
        back.close();
      }
    });

    it('repeats nothing when the new node reads the Stream behind the node the client came from', async () => {
      const watcher = await client(a, '/events');
      // b is frozen while 1,500 events go out, so it wakes up with them still to read
      b.child.kill('SIGSTOP');
      try {
        await a.post('/ctl/burst', { count: 1500, tag: 'backlog', endpoint: '/events' });
        const last = await watcher.waitFor((e) => e.data === 'backlog:1499', { timeout: 10_000 });
        watcher.close();
        // b wakes up with the client's request already waiting for it, and the backlog still to read
        const moving = client(b, '/events', { 'last-event-id': last.id });
        moving.catch(() => undefined);
        await requestWaiting(b.port);
        b.child.kill('SIGCONT');
        const moved = await moving;
        await a.post('/ctl/broadcast', { data: 'live', endpoint: '/events' });
        await a.post('/ctl/broadcast', { data: 'end', endpoint: '/events' });
        await moved.waitFor((e) => e.data === 'end', { timeout: 10_000 });
        expect(data(moved)).toEqual(['live', 'end']);
      } finally {
        b.child.kill('SIGCONT');
      }
    }, 60_000);

    it("resumes from a publisher's own id, given as the header or the lastEventId query parameter", async () => {
      await a.post('/ctl/broadcast', { event: 'update', data: 'mine', id: 'order-17', filter: { channel: 'news' } });
      await a.post('/ctl/broadcast', { event: 'update', data: 'next 1', filter: { channel: 'news' } });
      await a.post('/ctl/broadcast', { event: 'update', data: 'next 2', filter: { channel: 'news' } });
      const byHeader = await client(c, '/channels?channel=news', { 'last-event-id': 'order-17' });
      const byQuery = await client(b, '/channels?channel=news&lastEventId=order-17');
      for (const x of [byHeader, byQuery]) {
        await x.waitFor((e) => e.data === 'next 2');
        expect(data(x, 'update')).toEqual(['next 1', 'next 2']);
      }
    });

    it('sends sse.reset, then live data, for a garbage id, a too long id and an id older than the history', async () => {
      const garbage = await client(a, '/channels?channel=news', { 'last-event-id': 'no-such-id' });
      const long = await client(b, '/channels?channel=news', { 'last-event-id': 'x'.repeat(300) });
      expect(JSON.parse((await garbage.waitFor('sse.reset')).data)).toEqual({ reason: 'unknown' });
      expect(JSON.parse((await long.waitFor('sse.reset')).data)).toEqual({ reason: 'malformed' });

      // app two keeps 50 events: 300 later, the first is further back than its history
      const early = await client(d, '/events');
      await d.post('/ctl/broadcast', { data: 'early', endpoint: '/events' });
      const earlyId = (await early.waitFor('message')).id;
      early.close();
      await d.post('/ctl/burst', { count: 300, tag: 'later', endpoint: '/events' });
      const old = await client(d, '/events', { 'last-event-id': earlyId });
      expect(JSON.parse((await old.waitFor('sse.reset')).data)).toEqual({ reason: 'expired' });

      await a.post('/ctl/broadcast', { event: 'update', data: 'live news', filter: { channel: 'news' } });
      await d.post('/ctl/broadcast', { data: 'live two', endpoint: '/events' });
      for (const x of [garbage, long]) {
        await x.waitFor((e) => e.data === 'live news');
        expect(x.events.map((e) => e.event)).toEqual(['connection', 'sse.reset', 'update']);
      }
      await old.waitFor((e) => e.data === 'live two');
      expect(old.events.map((e) => e.event)).toEqual(['connection', 'sse.reset', 'message']);
    });
  });

  it('reports the whole cluster in stats on every node, and forgets a node killed with SIGKILL', async () => {
    await Promise.all([client(a, '/events'), client(b, '/events'), client(c, '/events'), client(c, '/events')]);
    const ids: string[] = await Promise.all([a, b, c].map(async (n) => (await n.get('/ctl/counters')).node));
    // each node's own count, as it knows it
    const local = async () => Promise.all([a, b, c].map(async (n) => (await n.get('/ctl/streams')).length as number));
    await eventually(
      async () => {
        const counts = await local();
        const all = await Promise.all([a, b, c].map((n) => n.get('/events/stats')));
        return all.every(
          (s) =>
            s.backend === 'redis' &&
            s.nodes.length === 3 &&
            s.connected_clients === counts[0] + counts[1] + counts[2] &&
            ids.every((id, i) => s.nodes.find((n: any) => n.node === id)?.connected_clients === counts[i]),
        );
      },
      10_000,
      'stats that agree on every node',
    );

    const nodes = '{app_one}:nodes';
    const redisNow = async () => {
      const [seconds, micros] = await admin.time();
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    };
    await c.kill('SIGKILL');
    const killedAt = await redisNow();
    // cleanupInterval is 2 s: the lease the dead node left runs out within that, on Redis's clock
    const lease = Number(await admin.zscore(nodes, ids[2]));
    expect(lease).toBeGreaterThan(0);
    expect(lease - killedAt).toBeLessThanOrEqual(2000);
    await eventually(
      async () => {
        const s = await a.get('/events/stats');
        return s.nodes.length === 2 && !s.nodes.some((n: any) => n.node === ids[2]);
      },
      10_000,
      'the killed node to leave the stats',
    );
    // and it left because its lease ran out
    const leftAt = await redisNow();
    expect(leftAt).toBeGreaterThanOrEqual(lease);
    console.log(
      `cluster stats: a SIGKILLed node left ${leftAt - killedAt} ms after its death (lease ${lease - killedAt} ms ahead)`,
    );
    const onB = await b.get('/events/stats');
    expect(onB.nodes.map((n: any) => n.node).sort()).toEqual([ids[0], ids[1]].sort());
  }, 40_000);

  it('closes without leaving anything open: the process exits by itself after app.close()', async () => {
    await client(d, '/events');
    await d.post('/ctl/close', {});
    const exit = await within(d.exited, 20_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(d.output()).not.toMatch(/ERROR/);
  }, 30_000);
});
