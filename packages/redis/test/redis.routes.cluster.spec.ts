import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import type { SseEnvelope } from '@nest-sse/core';
import { RedisPublisher } from '../src/redis.publisher.js';
import { RedisRouteFollower } from '../src/redis.routes.js';
import { eventually } from '../../../test/utils/app.js';
import { RedisCluster } from '../../../test/utils/redis-server.js';
import { closeParts, draft, openParts } from './parts.js';

/** Routed values on a real three-master Redis Cluster: each value's keys in its own slot, spread over the masters. */
describe('RedisRouteFollower on Redis Cluster (three masters)', () => {
  let cluster: RedisCluster;
  const clients: Cluster[] = [];
  const publishers: RedisPublisher[] = [];

  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(publishers.map((p) => p.close()));
    await closeParts();
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  const client = () => {
    const c = new Cluster([cluster.nodes[0]]);
    clients.push(c);
    return c;
  };

  /** Script runs each master served, by port. */
  async function evalshaPerMaster(): Promise<number[]> {
    return Promise.all(
      cluster.servers.map(async (server) => {
        const direct = new Redis(server.port, '127.0.0.1');
        try {
          return Number(/cmdstat_evalsha:calls=(\d+)/.exec(await direct.info('commandstats'))?.[1] ?? 0);
        } finally {
          direct.disconnect();
        }
      }),
    );
  }

  it('spreads values over every master; a node gets exactly the values it holds, each in order', async () => {
    const publishing = await openParts(undefined, 'spread', { client: client() });
    const following = await openParts(undefined, 'spread', { client: client() });
    const delivered: Array<{ value: string; envelope: SseEnvelope }> = [];
    const follower = new RedisRouteFollower(
      following.connections,
      following.keys,
      following.options,
      (envelope, value) => delivered.push({ value, envelope }),
      () => undefined,
    );
    const values = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    const held = values.filter((_, i) => i % 3 === 0);
    const slots = await Promise.all(
      values.map((v) => following.connections.commands!.call('CLUSTER', 'KEYSLOT', following.keys.route(v).events)),
    );
    expect(new Set(slots).size).toBe(30);

    for (const value of held) follower.hold(value, true);
    await eventually(() => held.every((v) => follower.position(v) !== undefined), 10_000, 'every held value to be followed');

    const lanes = new Map(
      values.map((v) => {
        const lane = new RedisPublisher(publishing.connections, publishing.keys, publishing.options, publishing.keys.route(v));
        lane.start('publisher');
        publishers.push(lane);
        return [v, lane] as const;
      }),
    );
    const before = await evalshaPerMaster();
    await Promise.all(values.flatMap((v) => Array.from({ length: 20 }, (_, i) => lanes.get(v)!.publish(draft(`${v}#${i}`)))));
    const after = await evalshaPerMaster();
    // every master appended some of the values' events
    for (let i = 0; i < 3; i++) expect(after[i] - before[i]).toBeGreaterThan(0);

    await eventually(() => delivered.length === held.length * 20, 10_000, 'the events of the held values');
    for (const value of held) {
      expect(delivered.filter((d) => d.value === value).map((d) => d.envelope.data)).toEqual(
        Array.from({ length: 20 }, (_, i) => `${value}#${i}`),
      );
    }
    expect(new Set(delivered.map((d) => d.value))).toEqual(new Set(held));
    expect(follower.gaps).toBe(0);
    follower.stop();
  }, 60_000);

  it("renews its subscriptions and catches up from the Stream when the client's sharded subscribers move (a failover)", async () => {
    const following = await openParts(undefined, 'renew', { client: client() });
    const admin = client();
    const delivered: string[] = [];
    const follower = new RedisRouteFollower(
      following.connections,
      following.keys,
      following.options,
      (envelope) => delivered.push(envelope.data),
      () => delivered.push('LOST'),
    );
    follower.hold('alice', true);
    await eventually(() => follower.position('alice') !== undefined, 10_000, 'alice to be followed');
    const keys = following.keys.route('alice');
    const subscribed = async () => {
      const counts = await Promise.all(
        admin
          .nodes('master')
          .map(async (node) => Number(((await node.call('PUBSUB', 'SHARDNUMSUB', keys.live)) as unknown[])[1])),
      );
      return counts.reduce((a, b) => a + b, 0);
    };
    expect(await subscribed()).toBe(1);
    // an entry the value's master took while no subscription reached it, as a promoted replica
    // does before the client's sharded subscribers have moved to it: nothing tells the follower
    const envelope = (data: string) => JSON.stringify({ data, origin: 'x', seq: 1, time: Date.now() });
    const first = (await admin.xadd(keys.events, '*', 'p', '', 'e', envelope('taken while unsubscribed')))!;
    // ioredis says its sharded subscribers were reset (it resubscribed them without waiting)
    following.connections.subscriber!.emit('subscribersReady');
    await eventually(() => delivered.length === 1, 10_000, 'the entry read from the Stream');
    expect(await subscribed()).toBe(1);
    // the renewed subscription carries what comes next, live
    const lane = new RedisPublisher(following.connections, following.keys, following.options, keys);
    lane.start('publisher');
    publishers.push(lane);
    await lane.publish(draft('live'));
    await eventually(() => delivered.length === 2, 10_000, 'the live event');
    expect(delivered).toEqual(['taken while unsubscribed', 'live']);
    expect((await admin.xrange(keys.events, '-', '+'))[1][1].slice(0, 2)).toEqual(['p', first]);
    expect(follower.gaps).toBe(0);
    follower.stop();
  }, 60_000);
});
