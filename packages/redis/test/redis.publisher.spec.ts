import { describe, expect, it } from '@jest/globals';
import { RedisUnavailableError } from '../src/errors/redis-unavailable.error.js';
import { RedisPublisher } from '../src/redis.publisher.js';
import { PUBLISH, type ScriptClient } from '../src/redis.scripts.js';
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

  /** One run of the publish script for one broadcast of seq `seq`, as a publisher sends it. */
  function publishRun(keys: { events: string; published: string }, seq: number, data: string, previous = 0) {
    const args = [seq, 1000, 0, 60_000, previous, 1, '', '', seq, JSON.stringify({ data }), 0];
    return PUBLISH.run(redis.admin as unknown as ScriptClient, [keys.events, keys.published], args).then(
      (ids) => (ids as string[])[0],
      (err: Error) => err,
    );
  }

  it('applies a broadcast sent again (its reply lost) once, and never one that arrives after a later one of its node', async () => {
    const keys = { events: 'guard{g}:events', published: 'guard{g}:pub:node-1' };
    const first = await publishRun(keys, 5, 'five');
    // sent again after a lost reply: the id it was given, not a second entry
    expect(await publishRun(keys, 5, 'five')).toBe(first);
    const later = await publishRun(keys, 7, 'seven');
    expect(typeof later).toBe('string');
    // seq 6, given up on by its node and held in a client's queue through a failover, reaches
    // Redis after seq 7: refused, not appended out of order
    const stale = await publishRun(keys, 6, 'six');
    expect(stale).toBeInstanceOf(Error);
    expect((stale as Error).message).toMatch(/^STALE a later broadcast of this node was applied first/);
    const entries = await redis.admin.xrange(keys.events, '-', '+');
    expect(entries.map(([id]) => id)).toEqual([first, later]);
  });

  it('numbers the broadcasts of every publisher of the process from one counter: one made again never reuses a seq', async () => {
    const a = await publisher('pub-seq');
    const id = await a.p.publish(draft('first publisher'));
    await a.p.close();
    // a publisher made again under the same resend guard (a routed value's, after it idled)
    const again = new RedisPublisher(a.connections, a.keys, a.options);
    again.start('node-1');
    const next = await again.publish(draft('second publisher'));
    expect(next).not.toBe(id);
    const entries = await redis.admin.xrange(a.keys.events, '-', '+');
    expect(entries.map(([, fields]) => JSON.parse(fields[3]).data)).toEqual(['first publisher', 'second publisher']);
    await again.close();
    await a.connections.close();
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
