import { describe, expect, it } from '@jest/globals';
import type { SseTransportContext } from '@nest-sse/core';
import { RedisNodeStats } from '../src/redis.node-stats.js';
import { eventually } from '../../../test/utils/app.js';
import { openParts, useRedisServer } from './parts.js';

describe('RedisNodeStats', () => {
  const redis = useRedisServer();

  async function node(prefix: string, id: string, counts: { connected: number }) {
    const parts = await openParts(redis.server.url, prefix, { statsInterval: 50 });
    const context: SseTransportContext = {
      nodeId: id,
      deliver: () => undefined,
      localStats: () => ({ node: id, connected: counts.connected, endpoints: { '/e': counts.connected }, updatedAt: Date.now() }),
    };
    const stats = new RedisNodeStats(parts.connections, parts.keys, parts.options);
    await stats.start(context);
    const close = async () => {
      await stats.leave();
      parts.connections.closed = true;
      await parts.connections.close();
    };
    return { stats, close, ...parts };
  }

  it('shows each node the others as they change, and forgets a node that leaves', async () => {
    const countsA = { connected: 1 };
    const a = await node('stats1', 'a', countsA);
    const b = await node('stats1', 'b', { connected: 4 });
    expect((await a.stats.read()).nodes.map((n) => [n.node, n.connected])).toEqual([
      ['a', 1],
      ['b', 4],
    ]);
    countsA.connected = 7;
    await eventually(
      async () => (await b.stats.read()).nodes.find((n) => n.node === 'a')?.connected === 7,
      5000,
      'the new count of a',
    );
    await b.close();
    expect((await a.stats.read()).nodes.map((n) => n.node)).toEqual(['a']);
    await a.close();
    expect(await redis.admin.zcard(a.keys.nodes)).toBe(0);
  });

  it('reports this node alone, with a warning, when Redis cannot answer', async () => {
    const a = await node('stats2', 'a', { connected: 2 });
    await redis.server.kill();
    redis.logs.lines = [];
    const alone = await a.stats.read();
    expect(alone).toEqual({ backend: 'redis', nodes: [expect.objectContaining({ node: 'a', connected: 2 })] });
    expect(redis.logs.lines.join('\n')).toMatch(/Cluster stats unavailable/);
    await a.close();
    await redis.server.launch();
  });
});
