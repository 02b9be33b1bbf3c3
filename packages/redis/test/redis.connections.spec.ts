import { describe, expect, it } from '@jest/globals';
import { eventually } from '../../../test/utils/app.js';
import { RedisUnavailableError } from '../src/errors/redis-unavailable.error.js';
import { openParts, useRedisServer } from './parts.js';

describe('RedisConnections', () => {
  const redis = useRedisServer();

  const names = async () =>
    [...String(await redis.admin.client('LIST')).matchAll(/name=(nest-sse:\w+)/g)].map((m) => m[1]).sort();

  it('opens a named command connection and reader, and closes both', async () => {
    const { connections } = await openParts(redis.server.url, 'conn1');
    expect(connections.connected).toBe(1);
    expect(await names()).toEqual(['nest-sse:commands', 'nest-sse:reader']);
    await connections.close();
    expect(connections.connected).toBe(0);
    expect(await names()).toEqual([]);
  });

  it('tells an outage once and the recovery once, and runs the ready hook again when the command connection is back', async () => {
    let readies = 0;
    const { connections } = await openParts(redis.server.url, 'conn2', { maxReconnectDelay: 100 }, () => readies++);
    const before = readies;
    redis.logs.lines = [];
    await redis.server.kill();
    await eventually(
      () => connections.commands!.status !== 'ready' && connections.reader!.status !== 'ready',
      5000,
      'both connections to notice',
    );
    // kept so that a broadcast that times out can say why
    await eventually(
      () => /ECONNREFUSED/.test(String((connections.lastFailure as Error | undefined)?.message)),
      5000,
      'a refused reconnect',
    );
    expect(await connections.whenReady(connections.commands!, 300)).toBe(false);
    expect(connections.outages).toBe(1);
    expect(connections.outageSince).toBeDefined();
    await redis.server.launch();
    expect(await connections.whenReady(connections.commands!, 5000)).toBe(true);
    expect(await connections.whenReady(connections.reader!, 5000)).toBe(true);
    expect(readies).toBe(before + 1);
    expect(connections.outages).toBe(1);
    expect(connections.outageSince).toBeUndefined();
    expect(
      redis.logs.lines.filter((line) => line.startsWith('warn Lost Redis') || line.includes('connection closed')),
    ).toHaveLength(1);
    expect(redis.logs.lines.filter((line) => line.includes('Redis is back after'))).toHaveLength(1);
    await connections.close();
  });

  it('says where it looked and why, without the password, when Redis is not there', async () => {
    const error = await openParts('redis://user:secret@127.0.0.1:1', 'conn3', { connectTimeout: 200 }).catch((err) => err);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.reason).toBe('refused');
    expect(error.message).toMatch(
      /within 200 ms \(connectTimeout\): Redis at redis:\/\/127\.0\.0\.1:1 refused the connection \(ECONNREFUSED\)/,
    );
    expect(error.message).not.toContain('secret');
  });
});
