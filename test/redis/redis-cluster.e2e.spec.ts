import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster } from 'ioredis';
import { SseEndpoint, SseHub } from '@nest-sse/core';
import { connect, eventually, type TestApp } from '../utils/app.js';
import { startAppOnClient } from '../utils/redis-app.js';
import { RedisCluster } from '../utils/redis-server.js';

@SseEndpoint('/events', { access: { stats: 'public' }, heartbeatInterval: 0 })
class EventsController {}

/** Two Nest apps whose transports use ioredis `Cluster` clients on a real three-master Redis Cluster. */
describe('RedisTransport on Redis Cluster (three masters)', () => {
  let cluster: RedisCluster;
  let admin: Cluster;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
    admin = new Cluster(cluster.nodes);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(apps.map((t) => t.close()));
    admin?.disconnect();
    await cluster?.stop();
  });

  /** A prefix whose hash slot another master than the seed node serves, so redirects are exercised. */
  async function prefixAwayFromSeed(): Promise<string> {
    const slots = await admin.cluster('SLOTS');
    const seed = cluster.nodes[0].port;
    for (let i = 0; ; i++) {
      const prefix = `cl${i}`;
      const slot = Number(await admin.cluster('KEYSLOT', `{${prefix}}`));
      const owner = slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
      if (owner !== seed) return prefix;
    }
  }

  async function node(prefix: string): Promise<TestApp> {
    // seeded with one node only: the client finds the rest and follows MOVED to the slot's owner
    const t = await startAppOnClient(new Cluster([cluster.nodes[0]]), prefix, [EventsController]);
    apps.push(t);
    return t;
  }

  it('delivers across nodes in one order, counts the cluster, and resumes from an id on the other node', async () => {
    const prefix = await prefixAwayFromSeed();
    const a = await node(prefix);
    const b = await node(prefix);
    const hubA = a.app.get(SseHub);

    const onB = await connect(b.url, '/events', { events: ['tick'] });
    const onA = await connect(a.url, '/events', { events: ['tick'] });
    // 100 broadcasts made in one turn on A: batched into script runs, delivered on both nodes
    await Promise.all(Array.from({ length: 100 }, (_, i) => hubA.broadcast({ event: 'tick', data: String(i) })));
    const seenB = await onB.waitForCount(100, 'tick', { timeout: 10_000 });
    const seenA = await onA.waitForCount(100, 'tick', { timeout: 10_000 });
    expect(seenB.map((e) => e.data)).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(seenA.map((e) => e.id)).toEqual(seenB.map((e) => e.id));

    // each node writes its counts within a second of a change
    let stats: any;
    await eventually(async () => {
      stats = await (await fetch(`${a.url}/events/stats`)).json();
      return stats.connected_clients === 2;
    });
    expect(stats).toMatchObject({ backend: 'redis', connected_clients: 2, endpoint_clients: 2 });
    expect(stats.nodes).toHaveLength(2);

    // B's client leaves; A publishes five more; the client comes back to A with B's last id
    const lastId = seenB[99].id;
    onB.close();
    for (let i = 100; i < 105; i++) await hubA.broadcast({ event: 'tick', data: String(i) });
    const back = await connect(a.url, '/events', { events: ['tick'], headers: { 'Last-Event-ID': lastId } });
    const missed = await back.waitForCount(5, 'tick', { timeout: 10_000 });
    expect(missed.map((e) => e.data)).toEqual(['100', '101', '102', '103', '104']);
    back.close();
    onA.close();

    // every key of the prefix lives in its one slot
    const keys: string[] = [];
    for (const master of admin.nodes('master')) keys.push(...(await master.keys(`{${prefix}}*`)));
    expect(keys.length).toBeGreaterThan(0);
    const slotsOfKeys = new Set(await Promise.all(keys.map((key) => admin.cluster('KEYSLOT', key))));
    expect(slotsOfKeys.size).toBe(1);
  }, 120_000);

  it('keeps order when every master forgets the scripts (restart, failover): the publish script is loaded where it runs', async () => {
    const prefix = await prefixAwayFromSeed();
    const a = await node(prefix);
    const hubA = a.app.get(SseHub);
    const onA = await connect(a.url, '/events', { events: ['tick'] });
    await hubA.broadcast({ event: 'tick', data: 'before' });
    for (const master of admin.nodes('master')) await master.script('FLUSH');
    await Promise.all(Array.from({ length: 20 }, (_, i) => hubA.broadcast({ event: 'tick', data: String(i) })));
    const seen = await onA.waitForCount(21, 'tick', { timeout: 10_000 });
    expect(seen.map((e) => e.data)).toEqual(['before', ...Array.from({ length: 20 }, (_, i) => String(i))]);
    onA.close();
  }, 60_000);
});
