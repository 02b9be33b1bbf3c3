import { describe, expect, it } from '@jest/globals';
import { RedisHistory } from '../src/redis.history.js';
import { RedisPublisher } from '../src/redis.publisher.js';
import { draft, openParts, useRedisServer } from './parts.js';

describe('RedisHistory', () => {
  const redis = useRedisServer();

  const evalshaCalls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.admin.info('commandstats'))?.[1] ?? 0);

  it('serves clients resuming from the same id with one script run, waits for the reader to pass the last entry it read', async () => {
    const parts = await openParts(redis.server.url, 'hist1');
    const publisher = new RedisPublisher(parts.connections, parts.keys, parts.options);
    publisher.start('n');
    const ids = await Promise.all(
      ['a', 'b', 'c', 'secret', 'd'].map((data) => publisher.publish(draft(data, data === 'secret' ? { target: 'x' } : {}))),
    );
    const waitedFor: string[] = [];
    const history = new RedisHistory(
      parts.connections,
      parts.keys,
      parts.options,
      async (id) => {
        waitedFor.push(id);
      },
      () => '0-0',
    );
    const before = await evalshaCalls();
    const answers = await Promise.all(Array.from({ length: 20 }, () => history.replay(ids[0], 100)));
    expect((await evalshaCalls()) - before).toBe(1);
    for (const answer of answers) {
      expect(answer.status === 'ok' && answer.events.map((e) => e.data)).toEqual(['b', 'c', 'd']);
    }
    // every live event up to the last one the replay wrote arrives while the stream is still held
    expect(waitedFor).toEqual([ids[4]]);
    // a different limit is a different question
    expect(await history.replay(ids[0], 2)).toEqual({ status: 'reset', reason: 'expired' });
    await publisher.close();
    parts.connections.closed = true;
    await parts.connections.close();
  });

  it('refuses to replay once the transport closed', async () => {
    const parts = await openParts(redis.server.url, 'hist2');
    const history = new RedisHistory(
      parts.connections,
      parts.keys,
      parts.options,
      async () => undefined,
      () => '0-0',
    );
    parts.connections.closed = true;
    await parts.connections.close();
    await expect(history.replay('1-0', 10)).rejects.toThrow(/not running/);
  });
});
