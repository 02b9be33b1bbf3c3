import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MemoryTransport, SseEndpoint, SseModule, type SseTransport } from '@nest-sse/core';
import { RedisTransport } from '@nest-sse/redis';
import { ADAPTERS, postJson, rawGet, startApp, type TestApp } from '../utils/app.js';
import { RedisServer } from '../utils/redis-server.js';

@SseEndpoint('/events', { heartbeatInterval: 0, welcome: false, access: { broadcast: 'public' } })
class EventsController {}

let printable = '';
for (let code = 0x21; code <= 0x7e; code++) printable += String.fromCharCode(code);

/**
 * Ids at the edges of what `broadcast` accepts: every printable ASCII character, the shortest
 * and longest, ids shaped like a Redis Stream id, and characters a query string, a Redis key or
 * a Cluster hash tag give meaning to.
 */
const IDS = [
  printable,
  '!',
  '~'.repeat(128),
  '1-0',
  '99999999999999-0',
  '%41%',
  '{tag}',
  'a\\b',
  '"quoted"',
  "it's",
  'a+b',
  'x&y=z#f',
  '?q',
  'order:42/x',
];

const TRANSPORTS: Array<[string, (redis: RedisServer, prefix: string) => SseTransport]> = [
  ['memory', () => new MemoryTransport()],
  ['redis', (redis, prefix) => new RedisTransport({ url: redis.url, prefix })],
];

/** Every id `broadcast` accepts is one a client resumes from, on every transport. */
describe.each(TRANSPORTS)('ids on the %s transport', (name, transportFor) => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await RedisServer.start();
  }, 30_000);

  afterAll(async () => {
    await redis?.stop();
  });

  describe.each(ADAPTERS)('over %s', (adapter) => {
    let t: TestApp;

    beforeAll(async () => {
      t = await startApp(adapter, {
        imports: [SseModule.forRoot({ transport: transportFor(redis, `ids-${adapter}`), drainTimeout: 0 })],
        controllers: [EventsController],
      });
    }, 30_000);

    afterAll(async () => {
      await t?.close();
    });

    it.each(IDS.map((id, i) => [id, i] as const))('resumes from %j by the header and by ?lastEventId', async (id, i) => {
      expect((await postJson(`${t.url}/events/broadcast`, { message: `at ${i}`, id })).status).toBe(200);
      expect((await postJson(`${t.url}/events/broadcast`, { message: `after ${i}` })).status).toBe(200);
      const byHeader = await rawGet(`${t.url}/events`, { 'last-event-id': id });
      const byQuery = await rawGet(`${t.url}/events?lastEventId=${encodeURIComponent(id)}`);
      try {
        for (const s of [byHeader, byQuery]) {
          await s.until((text) => text.includes(`data: after ${i}\n\n`));
          expect(s.text()).not.toContain('sse.reset');
          expect(s.text()).not.toContain(`data: at ${i}\n\n`);
        }
      } finally {
        byHeader.destroy();
        byQuery.destroy();
      }
    });
  });
});
