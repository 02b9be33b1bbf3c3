import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, eventually, postJson, request } from '../utils/app.js';
import { RedisServer, freePort, track } from '../utils/redis-server.js';
import { within } from './node-process.js';

const CLUSTER = fileURLToPath(new URL('../../sample/02-redis/nodes.js', import.meta.url));
const AUTH = { authorization: 'Bearer sample-token' };

/** `npm run start:nodes`: two nodes of the Redis sample started by one command. */
describe('sample/02-redis', () => {
  let redis: RedisServer;
  let cluster: ChildProcess;
  let exited: Promise<number | null>;
  let output = '';
  let urls: string[];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const ports = [await freePort(), await freePort()];
    urls = ports.map((port) => `http://127.0.0.1:${port}`);
    cluster = track(
      spawn(process.execPath, [CLUSTER], {
        env: {
          ...process.env,
          REDIS_URL: redis.url,
          CLUSTER_PORTS: ports.join(','),
          SSE_BROADCAST_TOKEN: 'sample-token',
          NEWS_INTERVAL_MS: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    exited = new Promise((resolve) => cluster.once('exit', (code) => resolve(code)));
    cluster.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    cluster.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    await eventually(
      () => ports.every((port) => output.includes(`[node ${port}] nest-sse sample on http://localhost:${port}`)),
      60_000,
      'both nodes',
    );
  }, 90_000);

  afterAll(async () => {
    cluster?.kill('SIGKILL');
    await redis?.stop();
  });

  it('delivers a broadcast sent to one node to a browser on the other, and both report the same stats', async () => {
    const [one, two] = urls;
    const browser = await connect(two, '/channels?channel=news', { events: ['connection', 'update'] });
    await browser.waitFor('connection');
    const res = await postJson(
      `${one}/channels/broadcast`,
      { message: 'from node one', event_type: 'update', filter: { channel: 'news' } },
      AUTH,
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, clients_reached: 0 });
    expect((await browser.waitFor('update')).data).toBe('from node one');
    await eventually(
      async () => {
        const [a, b] = await Promise.all(urls.map((url) => request(`${url}/channels/stats`, { headers: AUTH })));
        return (
          a.body.backend === 'redis' &&
          a.body.connected_clients === 1 &&
          b.body.connected_clients === 1 &&
          a.body.nodes.length === 2
        );
      },
      5000,
      'stats that agree',
    );
    browser.close();
  });

  it('routes /channels by channel: a browser resumes on the other node from its cursor id', async () => {
    const [one, two] = urls;
    const publish = (message: string) =>
      postJson(`${one}/channels/broadcast`, { message, event_type: 'update', filter: { channel: 'sample-routed' } }, AUTH);
    const first = await connect(two, '/channels?channel=sample-routed', { events: ['connection', 'update'] });
    await first.waitFor('connection');
    await publish('seen');
    const seen = await first.waitFor('update');
    // the channel's position and the endpoint-wide one, in one id
    expect(seen.id).toMatch(/^0\.\d+-\d+\.[0-9a-f]{8}\.\d+-\d+$/);
    first.close();
    await publish('missed');
    const back = await connect(one, '/channels?channel=sample-routed', {
      events: ['connection', 'update', 'sse.reset'],
      headers: { 'last-event-id': seen.id },
    });
    expect((await back.waitFor('update')).data).toBe('missed');
    expect(back.named('sse.reset')).toEqual([]);
    back.close();
  });

  it('stops both nodes on SIGTERM', async () => {
    cluster.kill('SIGTERM');
    const code = await within(exited, 12_000);
    expect(code).toBe(0);
  }, 30_000);
});
