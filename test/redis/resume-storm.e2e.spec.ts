import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually } from '../utils/app.js';
import { RedisServer } from '../utils/redis-server.js';
import { checkSequences, cleanReport, ResumingClient } from '../utils/resuming-client.js';
import { NodeProcess } from './node-process.js';

const CLIENTS = 300;

/**
 * The reconnect storm of a deploy, small: clients of one node come back, all at once, with their
 * Last-Event-ID to a node that has just started, while another node keeps publishing (several
 * broadcasts per turn). Each must get every event once, in order, without a gap.
 */
describe('Resuming on a freshly started node while another publishes (Redis)', () => {
  let redis: RedisServer;
  let a: NodeProcess;
  let b: NodeProcess | undefined;
  const clients: ResumingClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    a = await NodeProcess.start('a', { REDIS_URL: redis.url, SSE_PREFIX: 'storm' });
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  it('gives every resuming client each event once, in order, with no gap', async () => {
    await a.post('/ctl/pump', { tag: 'p', batch: 5, intervalMs: 10, endpoint: '/events' });
    for (let i = 0; i < CLIENTS; i++) clients.push(new ResumingClient());
    await Promise.all(clients.map((c) => c.connect(`${a.url}/events`)));
    await eventually(() => clients.every((c) => c.numbers('p').length > 0), 30_000, 'every client to stream from a');

    // They leave in waves, so that they come back with a few different ids, each shared by many.
    const waves = 3;
    const size = CLIENTS / waves;
    for (let w = 0; w < waves; w++) {
      const wave = clients.slice(w * size, (w + 1) * size);
      if (w > 0) {
        const left = Math.max(...clients.slice(0, w * size).map((c) => c.numbers('p').at(-1)!));
        await eventually(() => wave.every((c) => c.numbers('p').at(-1)! > left + 20), 30_000, `wave ${w} to read on`);
      }
      for (const c of wave) c.close();
    }

    b = await NodeProcess.start('b', { REDIS_URL: redis.url, SSE_PREFIX: 'storm' });
    await Promise.all(clients.map((c) => c.connect(`${b!.url}/events`)));
    await eventually(
      () => clients.every((c) => c.numbers('p').length > 0 && c.sessionEvents > 100),
      60_000,
      'every client to stream from b',
    );

    const { published, rejected } = await a.post('/ctl/pump/stop', {});
    expect(rejected).toEqual([]);
    await eventually(
      () => clients.every((c) => c.numbers('p').at(-1)! >= published - 1),
      60_000,
      'every client to get the last event',
    );
    expect(checkSequences(clients, 'p', published - 1)).toEqual(cleanReport(CLIENTS));
  }, 180_000);
});
