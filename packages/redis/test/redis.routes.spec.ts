import { afterEach, describe, expect, it } from '@jest/globals';
import type { SseEnvelope } from '@nest-sse/core';
import { RedisPublisher } from '../src/redis.publisher.js';
import { RedisRouteFollower } from '../src/redis.routes.js';
import { eventually } from '../../../test/utils/app.js';
import { draft, openParts, useRedisServer } from './parts.js';

const LOST = 'LOST';

describe('RedisRouteFollower', () => {
  const publishers: RedisPublisher[] = [];
  // registered before the server's hooks: publishers close before their connections do
  afterEach(async () => {
    await Promise.all(publishers.splice(0).map((p) => p.close()));
  });
  const redis = useRedisServer();

  /** A publishing node: one publisher per routed value it sends to. */
  async function publishingNode(prefix: string, options = {}) {
    const parts = await openParts(redis.server.url, prefix, options);
    const lanes = new Map<string, RedisPublisher>();
    return (value: string, data: string) => {
      let lane = lanes.get(value);
      if (lane === undefined) {
        lane = new RedisPublisher(parts.connections, parts.keys, parts.options, parts.keys.route(value));
        lane.start('publisher');
        lanes.set(value, lane);
        publishers.push(lane);
      }
      return lane.publish(draft(data));
    };
  }

  async function followingNode(prefix: string, options = {}, linger = 200) {
    const parts = await openParts(redis.server.url, prefix, options);
    const delivered: Array<{ value: string; envelope: SseEnvelope }> = [];
    /** What the node's connections got, in order: the data of each event, `LOST` where they were told of a loss. */
    const told: Array<{ value: string; what: string }> = [];
    const follower = new RedisRouteFollower(
      parts.connections,
      parts.keys,
      parts.options,
      (envelope, value) => {
        delivered.push({ value, envelope });
        told.push({ value, what: envelope.data });
      },
      (value) => told.push({ value, what: LOST }),
      linger,
    );
    const of = (value: string) => delivered.filter((d) => d.value === value).map((d) => d.envelope.data);
    const seen = (value: string) => told.filter((t) => t.value === value).map((t) => t.what);
    return { follower, delivered, of, seen, ...parts };
  }

  const subscribers = async (channel: string) =>
    Number(((await redis.admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as unknown[])[1]);

  it('reads only the values it holds, each in order, with the ids of its Stream', async () => {
    const publish = await publishingNode('route1');
    const node = await followingNode('route1');
    node.follower.hold('alice', true);
    await eventually(
      async () => (await subscribers(node.keys.route('alice').live)) === 1 && node.follower.position('alice') !== undefined,
    );
    const ids = await Promise.all(
      Array.from({ length: 100 }, (_, i) => publish(i % 2 ? 'alice' : 'bob', `${i % 2 ? 'a' : 'b'}${i}`)),
    );
    await eventually(() => node.delivered.length === 50, 5000, 'the events of alice');
    expect(node.of('alice')).toEqual(Array.from({ length: 50 }, (_, i) => `a${2 * i + 1}`));
    expect(node.delivered.map((d) => d.envelope.id)).toEqual(ids.filter((_, i) => i % 2));
    expect(await subscribers(node.keys.route('bob').live)).toBe(0);
    expect(node.follower.gaps).toBe(0);
  });

  it('fills from the Stream what it missed while its subscriber connection was gone, before delivering on', async () => {
    const publish = await publishingNode('route2');
    const node = await followingNode('route2', { maxReconnectDelay: 100 });
    node.follower.hold('alice', true);
    await eventually(() => node.follower.position('alice') !== undefined);
    const batch = (from: number, count: number) =>
      Promise.all(Array.from({ length: count }, (_, i) => publish('alice', `n${from + i}`)));
    await batch(0, 200);
    await eventually(() => node.delivered.length === 200, 5000, 'the first 200');
    await redis.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    // made in one turn, before the subscriber is back (its first reconnect waits at least 100 ms)
    await batch(200, 300);
    await batch(500, 100);
    await eventually(() => node.delivered.length >= 600, 10_000, 'all 600');
    expect(node.of('alice')).toEqual(Array.from({ length: 600 }, (_, i) => `n${i}`));
    expect(node.follower.filled).toBeGreaterThan(0);
    expect(node.follower.gaps).toBe(0);
  });

  it('starts a value without a seam while it is being published to: a run with no hole and nothing twice', async () => {
    const publish = await publishingNode('route3');
    const node = await followingNode('route3');
    const calls: Array<Promise<string>> = [];
    for (let i = 0; i < 400; i++) {
      calls.push(publish('alice', String(i)));
      if (i === 100) node.follower.hold('alice', true);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(calls);
    // the subscription may take effect anywhere from event 100 to after 399 (a slow machine)
    await eventually(() => node.follower.position('alice') !== undefined, 10_000, 'the subscription');
    await publish('alice', '400');
    await eventually(() => node.of('alice').at(-1) === '400', 10_000, 'the last event');
    const got = node.of('alice').map(Number);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => got[0] + i));
    expect(got[0]).toBeGreaterThanOrEqual(100);
  });

  it('keeps a value it is let go of for the linger time, and drops it after', async () => {
    const node = await followingNode('route4', {}, 300);
    const channel = node.keys.route('alice').live;
    node.follower.hold('alice', true);
    await eventually(async () => (await subscribers(channel)) === 1);
    node.follower.hold('alice', false);
    node.follower.hold('alice', true);
    node.follower.hold('alice', false);
    expect(node.follower.values()).toEqual(['alice']);
    await eventually(
      async () => (await subscribers(channel)) === 0 && node.follower.values().length === 0,
      5000,
      'the value to be let go',
    );
  });

  it('reports entries that were trimmed before it could read them, and goes on', async () => {
    const publish = await publishingNode('route5', { historySize: 5 });
    const node = await followingNode('route5', { maxReconnectDelay: 2000 });
    node.follower.hold('alice', true);
    await eventually(() => node.follower.position('alice') !== undefined);
    await publish('alice', 'first');
    await eventually(() => node.delivered.length === 1);
    // the follower's connections are gone while 300 more are published into a 5-entry history
    const commandsId = await node.connections.commands!.client('ID');
    await redis.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await redis.admin.call('CLIENT', 'KILL', 'ID', commandsId);
    // made in one turn: appended in a few script runs, well before the follower reconnects
    await Promise.all(Array.from({ length: 300 }, (_, i) => publish('alice', `n${i}`)));
    await eventually(() => node.of('alice').at(-1) === 'n299', 10_000, 'the last event');
    expect(node.follower.gaps).toBeGreaterThan(0);
    expect(redis.logs.lines.join('\n')).toMatch(/Events of alice between .* were gone from .*told to reset/);
    const got = node.of('alice');
    expect(got.length).toBeLessThan(301);
    // the node's connections were told before the events after the gap reached them
    const seen = node.seen('alice');
    expect(seen.slice(0, 2)).toEqual(['first', LOST]);
    expect(seen.filter((w) => w === LOST)).toHaveLength(node.follower.losses);
  });

  /**
   * What a promoted replica that missed the old master's last writes looks like from a follower:
   * the Stream goes back to an older entry, and the chain goes on from there.
   */
  async function forkStream(key: string, keepThrough: string): Promise<void> {
    const kept = (await redis.admin.xrange(key, '-', keepThrough)) as Array<[string, string[]]>;
    await redis.admin.del(key);
    for (const [id, fields] of kept) await redis.admin.xadd(key, id, ...fields);
  }

  const markers = async (key: string) =>
    ((await redis.admin.xrange(key, '-', '+')) as Array<[string, string[]]>).filter(([, fields]) => fields.includes('l'));

  /**
   * A node that follows alice and was delivered five events, of which a failover keeps only the
   * first two (`forkStream`); `other` starts following her after the failover.
   */
  async function failedOver(prefix: string) {
    const publish = await publishingNode(prefix);
    const witness = await followingNode(prefix);
    const other = await followingNode(prefix);
    witness.follower.hold('alice', true);
    await eventually(() => witness.follower.position('alice') !== undefined);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await publish('alice', `n${i}`));
    await eventually(() => witness.delivered.length === 5, 5000, 'the first five');
    const keys = witness.keys.route('alice');
    await forkStream(keys.events, ids[1]);
    other.follower.hold('alice', true);
    await eventually(() => other.follower.position('alice') !== undefined);
    return { publish, witness, other, ids, keys };
  }

  it('tells its connections, and marks the loss, when entries it delivered are gone from the Stream (a failover lost them)', async () => {
    const { witness, other, ids, keys } = await failedOver('route6');
    // a node that never published to alice before: it knows of no loss
    const fresh = await publishingNode('route6');
    await fresh('alice', 'after');
    await eventually(() => witness.of('alice').at(-1) === 'after', 5000, 'the event after the failover');
    expect(witness.seen('alice')).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', LOST, 'after']);
    expect(redis.logs.lines.join('\n')).toMatch(/Events of alice after .* up to .* which this node delivered, are gone/);
    // the marker it adds tells `other`, which followed alice after the failover and saw no fork
    await eventually(async () => (await markers(keys.events)).length > 0, 5000, 'the loss marker');
    await fresh('alice', 'later');
    await eventually(() => witness.of('alice').at(-1) === 'later' && other.of('alice').at(-1) === 'later');
    expect(other.seen('alice')).toEqual(['after', LOST, 'later']);
    expect(witness.seen('alice')).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', LOST, 'after', 'later']);
    expect((await markers(keys.events)).map(([, fields]) => fields.slice(2))).toEqual([['f', ids[1], 'l', ids[4]]]);
    // the chain stays whole: every entry names the one before it
    const chain = (await redis.admin.xrange(keys.events, '-', '+')) as Array<[string, string[]]>;
    for (let i = 1; i < chain.length; i++) expect(chain[i][1][1]).toBe(chain[i - 1][0]);
  });

  it('tells its connections of a loss it did not see itself, from the marker a publisher adds when its last event is gone', async () => {
    const { publish, witness, other, ids, keys } = await failedOver('route7');
    // the publisher was given ids[4], which is gone: its next publish marks the loss first
    await publish('alice', 'after');
    await eventually(() => other.of('alice').at(-1) === 'after' && witness.of('alice').at(-1) === 'after');
    expect(other.seen('alice')).toEqual([LOST, 'after']);
    // the witness found the fork at the publisher's marker: it told its connections once
    expect(witness.seen('alice')).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', LOST, 'after']);
    await publish('alice', 'later');
    await eventually(() => witness.of('alice').at(-1) === 'later');
    // and added no second marker of the same loss
    expect((await markers(keys.events)).map(([, fields]) => fields)).toEqual([['p', ids[1], 'f', ids[1], 'l', ids[4]]]);
  });
});
