import { describe, it, expect, afterEach } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, postJson, rawGet, request } from '../utils/app.js';
import { freePort } from '../utils/redis-server.js';

const MAIN = fileURLToPath(new URL('../../sample/01-basic/dist/main.js', import.meta.url));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Sample = { child: ChildProcess; url: string; exited: Promise<Exit> };

/** The compiled sample, as `npm start` runs it; on another port when the one found free was taken before the sample bound it. */
async function startSample(env: Record<string, string> = {}): Promise<Sample> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSampleOnFreePort(env);
    } catch (err) {
      if (attempt === 3 || !(err as Error).message.includes('EADDRINUSE')) throw err;
    }
  }
}

async function startSampleOnFreePort(env: Record<string, string>): Promise<Sample> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the sample did not start within 60 s:\n${output}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`localhost:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the sample exited with ${code}:\n${output}`));
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, exited };
}

describe('sample/01-basic', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('serves the page, streams news, and takes a broadcast through its token guard', async () => {
    const sample = await startSample({ NEWS_INTERVAL_MS: '200', SSE_BROADCAST_TOKEN: 'sample-secret' });
    child = sample.child;
    const page = await request(`${sample.url}/`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('new EventSource');
    expect(page.text).not.toContain('sample-secret');
    const client = await connect(sample.url, '/channels?channel=news', { events: ['connection', 'update'] });
    expect((await client.waitFor('connection')).data).toBe('Connected to channel: news');
    await client.waitFor('update', { timeout: 3000 });
    expect((await postJson(`${sample.url}/channels/broadcast`, { message: 'x' })).status).toBe(401);
    const res = await postJson(
      `${sample.url}/channels/broadcast`,
      { message: 'from the test', event_type: 'update', filter: { channel: 'news' } },
      { authorization: 'Bearer sample-secret' },
    );
    expect(res.body).toMatchObject({ success: true, clients_reached: 1 });
    await client.waitFor((e) => e.data === 'from the test');
    const stats = await request(`${sample.url}/channels/stats`, { headers: { authorization: 'Bearer sample-secret' } });
    expect(stats.body.endpoints['/channels']).toBe(1);
    client.close();
  });

  it('streams private notifications to the demo user its bearer token names, never by the query', async () => {
    const sample = await startSample({ NEWS_INTERVAL_MS: '0', SSE_BROADCAST_TOKEN: 'sample-secret', SSE_DEMO_USERS: 'carol:carol-secret-1,dave:dave-secret-2' });
    child = sample.child;
    expect((await request(`${sample.url}/notifications`)).status).toBe(401);
    // the development defaults are not users once SSE_DEMO_USERS is set
    expect((await request(`${sample.url}/notifications`, { headers: { authorization: 'Bearer alice-token' } })).status).toBe(401);
    const carol = await connect(sample.url, '/notifications?user_id=dave', { events: ['connection', 'notification'], headers: { authorization: 'Bearer carol-secret-1' } });
    const dave = await connect(sample.url, '/notifications', { events: ['connection', 'notification'], headers: { authorization: 'Bearer dave-secret-2' } });
    expect((await carol.waitFor('connection')).data).toBe('Signed in as carol');
    expect((await dave.waitFor('connection')).data).toBe('Signed in as dave');

    // the broadcast route is guarded like the others'
    const toDave = { message: 'for dave only', event_type: 'notification', filter: { user_id: 'dave' } };
    expect((await postJson(`${sample.url}/notifications/broadcast`, toDave, { authorization: 'Bearer dave-secret-2' })).status).toBe(401);
    const res = await postJson(`${sample.url}/notifications/broadcast`, toDave, { authorization: 'Bearer sample-secret' });
    expect(res.body).toMatchObject({ success: true, clients: 2, clients_reached: 1 });
    await dave.waitFor((e) => e.data === 'for dave only');
    const stats = await request(`${sample.url}/notifications/stats`, { headers: { authorization: 'Bearer sample-secret' } });
    expect(stats.body.endpoints['/notifications']).toBe(2);
    expect(carol.named('notification')).toHaveLength(0);
    carol.close();
    dave.close();

    const bundle = await fetch(`${sample.url}/client.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await bundle.text()).toContain('text/event-stream');
  });

  it('refuses to start with SSE_DEMO_USERS it cannot read, and says the format', async () => {
    const port = await freePort();
    const run = spawn(process.execPath, [MAIN], { env: { ...process.env, PORT: String(port), SSE_DEMO_USERS: 'carol:carol-secret-1,dave=dave-secret-2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    run.stdout!.on('data', (chunk: Buffer) => (output += chunk));
    run.stderr!.on('data', (chunk: Buffer) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
    expect(code).toBe(1);
    expect(output).toContain('SSE_DEMO_USERS must be name:token pairs separated by commas');
    expect(output).toContain('entry 2 is not');
    expect(output).not.toContain('secret');
  });

  it('drains its streams and exits on SIGTERM within the drain window', async () => {
    const sample = await startSample({ NEWS_INTERVAL_MS: '0' });
    child = sample.child;
    const streams = await Promise.all(Array.from({ length: 200 }, () => rawGet(`${sample.url}/events`)));
    await Promise.all(streams.map((s) => s.until((text) => text.includes('Connected'))));
    const started = Date.now();
    sample.child.kill('SIGTERM');
    await Promise.all(streams.map((s) => s.ended));
    const exit = await sample.exited;
    const took = Date.now() - started;
    console.log(`sample: 200 streams drained and the process gone ${took} ms after SIGTERM`);
    // The drain window (1 s) plus generous slack for a busy machine; a shutdown that waited for
    // the clients to leave would never end (it meets the test's timeout instead).
    expect(took).toBeLessThan(1000 + 5000);
    // Nest's shutdown hooks end a clean shutdown by raising the signal again (a failed one exits with code 1)
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(streams.every((s) => /retry: \d+\n\n$/.test(s.text()))).toBe(true);
  });
});
