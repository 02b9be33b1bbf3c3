import { describe, expect, it } from '@jest/globals';
import type { SseEnvelope } from '@nest-sse/core';
import { RedisStreamReader } from '../src/redis.reader.js';
import { eventually } from '../../../test/utils/app.js';
import { openParts, useRedisServer } from './parts.js';

const envelope = (data: string) => JSON.stringify({ data, origin: 'x', seq: 1, time: 1 });

describe('RedisStreamReader', () => {
  const redis = useRedisServer();

  async function reader(prefix: string, after = '0-0') {
    const parts = await openParts(redis.server.url, prefix);
    const delivered: SseEnvelope[] = [];
    const r = new RedisStreamReader(parts.connections, parts.keys.events, parts.options, (e) => delivered.push(e));
    r.start(after);
    const stop = async () => {
      parts.connections.stopWatching();
      await r.stop();
      await parts.connections.close();
    };
    return { r, delivered, stop, ...parts };
  }

  it('delivers entries after its start position in Stream order, and wakes readThrough once it has passed an id', async () => {
    const key = '{read1}:events';
    const before = await redis.admin.xadd(key, '*', 'p', '', 'e', envelope('old'));
    const { r, delivered, stop } = await reader('read1', before!);
    const first = await redis.admin.xadd(key, '*', 'p', before!, 'e', envelope('a'));
    const second = await redis.admin.xadd(key, '*', 'p', first!, 'e', envelope('b'));
    await r.readThrough(second!);
    expect(delivered.map((e) => [e.id, e.data])).toEqual([
      [first, 'a'],
      [second, 'b'],
    ]);
    expect(r.lastId).toBe(second);
    expect(r.gaps).toBe(0);
    await stop();
  });

  it('counts and reports entries that were gone before it read them, and goes on', async () => {
    const key = '{read2}:events';
    const start = await redis.admin.xadd(key, '*', 'p', '', 'e', envelope('start'));
    const { r, delivered, stop } = await reader('read2', start!);
    redis.logs.lines = [];
    // an entry that says it follows one this reader never saw (trimmed before it read it)
    const next = await redis.admin.xadd(key, '*', 'p', '1-1', 'e', envelope('after the gap'));
    await eventually(() => delivered.length === 1, 5000, 'the entry after the gap');
    expect(r.gaps).toBe(1);
    expect(redis.logs.lines.join('\n')).toContain(`Events between ${start} and ${next} were trimmed from ${key}`);
    // a Stream that was recreated: its first entry names no predecessor
    await redis.admin.del(key);
    await redis.admin.xadd(key, '*', 'p', '', 'e', envelope('new stream'));
    await eventually(() => delivered.length === 2, 5000, 'the entry of the new Stream');
    expect(r.gaps).toBe(2);
    expect(redis.logs.lines.join('\n')).toContain(`The Stream ${key} was recreated`);
    await stop();
  });

  it('resumes from the last id it read after the connection drops', async () => {
    const key = '{read3}:events';
    const { delivered, stop, connections } = await reader('read3');
    await redis.admin.xadd(key, '*', 'p', '', 'e', envelope('1'));
    await eventually(() => delivered.length === 1);
    await redis.admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    const id = await redis.admin.xadd(key, '*', 'e', envelope('2'));
    await eventually(() => delivered.length === 2, 8000, 'the entry written while it was away');
    expect(delivered.map((e) => e.data)).toEqual(['1', '2']);
    expect(delivered[1].id).toBe(id);
    expect(connections.reader?.status).toBe('ready');
    await stop();
  });
});
