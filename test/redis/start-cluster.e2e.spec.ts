import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { SseTestClient } from '@nest-sse/testing';
import { connectWelcomed, eventually } from '../utils/app.js';
import { RedisServer, freePort, track } from '../utils/redis-server.js';
import { within } from './node-process.js';

const CLUSTER = fileURLToPath(new URL('../../sample/02-redis/cluster.js', import.meta.url));
const PROBE = pathToFileURL(fileURLToPath(new URL('./taken-socket-probe.mjs', import.meta.url))).href;
const AUTH = { authorization: 'Bearer cluster-token' };
const WORKERS = 2;
const CLIENTS = 8;

/**
 * POST /events/broadcast on a connection of its own (no keep-alive), so each broadcast is a new
 * connection that the primary hands to a worker that is listening. Resolves with the status, or
 * the network error.
 */
function broadcast(url: string, message: string): Promise<string | number> {
  const body = JSON.stringify({ message, event_type: 'seq' });
  return new Promise((resolve) => {
    const req = http.request(
      `${url}/events/broadcast`,
      {
        method: 'POST',
        agent: false,
        headers: { ...AUTH, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', (err) => resolve(`${(err as NodeJS.ErrnoException).code ?? err.message} at ${new Date().toISOString()}`));
    req.end(body);
  });
}

/**
 * `npm run start:cluster`: the Redis sample in node:cluster workers on one port. EventSource
 * clients stay connected through two rolling restarts (SIGTERM to each worker in turn, then
 * SIGHUP to the primary) while broadcasts go on, and must get every event once, in order.
 */
describe('sample/02-redis on node:cluster', () => {
  let redis: RedisServer;
  let primary: ChildProcess;
  let exited: Promise<number | null>;
  let output = '';
  let url: string;
  const clients: SseTestClient[] = [];

  /** The pid of each worker slot that printed 'listening' last. */
  const workerPids = (): Map<number, number> => {
    const pids = new Map<number, number>();
    for (const match of output.matchAll(/\[primary\] worker (\d+) \(pid (\d+)\) listening/g))
      pids.set(Number(match[1]), Number(match[2]));
    return pids;
  };

  beforeAll(async () => {
    redis = await RedisServer.start();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    primary = track(
      spawn(process.execPath, [CLUSTER], {
        env: {
          ...process.env,
          SSE_WORKERS: String(WORKERS),
          PORT: String(port),
          REDIS_URL: redis.url,
          SSE_BROADCAST_TOKEN: 'cluster-token',
          NEWS_INTERVAL_MS: '0',
          NODE_OPTIONS: `--import=${PROBE}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    exited = new Promise((resolve) => primary.once('exit', (code) => resolve(code)));
    primary.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    primary.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    await eventually(() => workerPids().size === WORKERS, 30_000, `${WORKERS} workers listening`);
  }, 40_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    primary?.kill('SIGKILL');
    await redis?.stop();
  });

  it('gives each stream its socket in the workers and loses no event through rolling restarts', async () => {
    for (let i = 0; i < CLIENTS; i++)
      clients.push(await connectWelcomed(url, '/events', { events: ['connection', 'sse.reset', 'seq'] }));
    // the primary handed the connections to both workers, and each stream took its socket there
    const taken = () => [...output.matchAll(/\[probe\] socket taken by a stream in pid (\d+)/g)].map((m) => Number(m[1]));
    await eventually(() => taken().length >= CLIENTS, 5000, 'every stream to take its socket');
    expect(new Set(taken())).toEqual(new Set(workerPids().values()));

    let sent = 0;
    let broadcasting = true;
    const failures: string[] = [];
    const broadcaster = (async () => {
      while (broadcasting) {
        const status = await broadcast(url, String(sent));
        if (status === 200) sent++;
        else failures.push(`broadcast ${sent}: ${status}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();

    // A client resumes from the last id it saw: one that saw none yet has nothing to resume from.
    for (const client of clients) await client.waitFor('seq', { timeout: 10_000 });
    // roll 1: SIGTERM to each worker in turn; the primary starts a replacement in its slot
    for (const [slot, pid] of workerPids()) {
      const before = sent;
      process.kill(pid, 'SIGTERM');
      await eventually(() => (workerPids().get(slot) ?? pid) !== pid, 30_000, `a replacement for worker ${slot}`);
      await eventually(() => sent > before + 5, 10_000, 'broadcasts to go on');
    }
    // Every client was on a worker roll 1 replaced (each worker was), and streams again before
    // roll 2 starts: a client still waiting out its retry hint would skip roll 2 altogether.
    await eventually(
      () => clients.every((client) => client.opens >= 2 && client.source.readyState === 1),
      30_000,
      'every client to stream again after roll 1',
    );
    // roll 2: SIGHUP to the primary replaces every worker, each new one listening before the old one stops
    const marks = output.split('rolling restart done').length;
    primary.kill('SIGHUP');
    await eventually(() => output.split('rolling restart done').length > marks, 60_000, 'the rolling restart');
    const during = sent;
    await eventually(() => sent > during + 5, 10_000, 'broadcasts after the roll');
    broadcasting = false;
    await broadcaster;
    expect(failures).toEqual([]);

    const last = String(sent - 1);
    for (const client of clients) await client.waitFor((e) => e.event === 'seq' && e.data === last, { timeout: 20_000 });
    const expected = Array.from({ length: sent }, (_, i) => String(i));
    for (const client of clients) {
      expect(client.named('sse.reset')).toEqual([]);
      expect(client.named('seq').map((e) => e.data)).toEqual(expected);
      // opened, then resumed after roll 1 and again after roll 2
      expect(client.opens).toBeGreaterThanOrEqual(3);
    }
  }, 150_000);

  it('stops every worker on SIGTERM to the primary', async () => {
    primary.kill('SIGTERM');
    expect(await within(exited, 15_000)).toBe(0);
  }, 20_000);
});
