import { describe, expect, it } from '@jest/globals';
import { RedisHistory } from '../src/redis.history.js';
import { RedisPublisher } from '../src/redis.publisher.js';
import { draft, openParts, useRedisServer } from './parts.js';

describe('RedisHistory', () => {
  const redis = useRedisServer();

  /** The history of a node whose reader is always through. */
  const historyOn = (parts: Awaited<ReturnType<typeof openParts>>) =>
    new RedisHistory(
      parts.connections,
      parts.keys,
      parts.options,
      async () => undefined,
      () => '0-0',
    );

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
    const history = historyOn(parts);
    parts.connections.closed = true;
    await parts.connections.close();
    await expect(history.replay('1-0', 10)).rejects.toThrow(/not running/);
  });

  it('resets a client whose id, or what followed it, is gone without being trimmed (a failover lost it): reason lost', async () => {
    const parts = await openParts(redis.server.url, 'hist3');
    const publisher = new RedisPublisher(parts.connections, parts.keys, parts.options);
    publisher.start('n');
    const ids: string[] = [];
    for (const data of ['a', 'b', 'c', 'd']) ids.push(await publisher.publish(draft(data)));
    const history = historyOn(parts);
    // a promoted replica that had only 'a' and 'b': the Stream goes on from 'b'
    const key = parts.keys.events;
    const kept = (await redis.admin.xrange(key, '-', ids[1])) as Array<[string, string[]]>;
    await redis.admin.del(key);
    for (const [id, fields] of kept) await redis.admin.xadd(key, id, ...fields);
    await redis.admin.xadd(key, '*', 'p', ids[1], 'e', JSON.stringify({ data: 'e', origin: 'x', seq: 1, time: Date.now() }));
    // 'c', the client's last event, is gone: what it missed after it cannot be told apart
    expect(await history.replay(ids[2], 100)).toEqual({ status: 'reset', reason: 'lost' });
    // from 'b', what is there follows it: nothing is missing
    const fromB = await history.replay(ids[1], 100);
    expect(fromB.status === 'ok' && fromB.events.map((e) => e.data)).toEqual(['e']);
    await publisher.close();
  });
});
