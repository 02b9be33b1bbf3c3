import { describe, expect, it } from '@jest/globals';
import { RedisUnavailableError } from '../src/errors/redis-unavailable.error.js';
import { RedisPublisher } from '../src/redis.publisher.js';
import { eventually } from '../../../test/utils/app.js';
import { draft, openParts, useRedisServer } from './parts.js';

describe('RedisPublisher', () => {
  const redis = useRedisServer();

  async function publisher(prefix: string, options = {}) {
    const ref: { p?: RedisPublisher } = {};
    const parts = await openParts(redis.server.url, prefix, options, () => ref.p?.flush());
    const p = (ref.p = new RedisPublisher(parts.connections, parts.keys, parts.options));
    p.start('node-1');
    return { p, ...parts };
  }

  it('appends in call order, each entry naming the one before, with no reader running', async () => {
    const { p, keys, connections } = await publisher('pub1');
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => p.publish(draft(`m${i}`))));
    const entries = await redis.admin.xrange(keys.events, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(ids);
    expect(entries.map(([, fields]) => JSON.parse(fields[3]).data)).toEqual(ids.map((_, i) => `m${i}`));
    entries.forEach(([, fields], i) => expect(fields.slice(0, 2)).toEqual(['p', i === 0 ? '' : ids[i - 1]]));
    // the resend guard holds nothing once every publish is confirmed and the next run trims it
    expect(p.pending + p.unconfirmed).toBe(0);
    await p.close();
    await connections.close();
  });

  it('holds at most maxPendingPublishes while Redis is away, and tells the held ones on close that they were never sent', async () => {
    const { p, connections } = await publisher('pub2', { maxPendingPublishes: 3, maxReconnectDelay: 100 });
    await redis.server.kill();
    await eventually(() => connections.commands!.status !== 'ready', 5000, 'the command connection to notice');
    const held = [p.publish(draft('1')), p.publish(draft('2')), p.publish(draft('3'))].map((call) => call.catch((err) => err));
    const refused = await p.publish(draft('4')).catch((err) => err);
    expect(refused).toBeInstanceOf(RedisUnavailableError);
    expect(refused.message).toMatch(/3 broadcasts are already waiting for Redis \(maxPendingPublishes\)/);
    expect(p.pending).toBe(3);
    connections.closed = true;
    await p.close();
    for (const err of await Promise.all(held))
      expect(err.message).toMatch(/closed before this broadcast reached Redis; it will not be delivered/);
    await connections.close();
    await redis.server.launch();
  });

  it('rejects a broadcast Redis refuses with why and when to retry, and forgets the failure once a broadcast goes through', async () => {
    const { p, connections } = await publisher('pub3');
    await redis.admin.config('SET', 'maxmemory-policy', 'noeviction');
    await redis.admin.config('SET', 'maxmemory', '1');
    try {
      const refused = await p.publish(draft('too much')).catch((err) => err);
      expect(refused).toBeInstanceOf(RedisUnavailableError);
      expect(refused.message).toMatch(
        /^Redis is out of memory: it reached maxmemory.*\(OOM command not allowed.*this broadcast was not sent and will not be delivered\.$/,
      );
      expect(refused.retryAfter).toBe(5);
      expect(connections.lastFailure).toBe(refused.cause);
    } finally {
      await redis.admin.config('SET', 'maxmemory', '0');
    }
    expect(await p.publish(draft('fits'))).toMatch(/^\d+-\d+$/);
    expect(connections.lastFailure).toBeUndefined();
    await p.close();
    await connections.close();
  });
});
