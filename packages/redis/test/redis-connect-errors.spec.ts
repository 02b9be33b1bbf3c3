import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { SseConfigurationError, SseEndpoint, SseModule, type SseTransportContext } from '@nest-sse/core';
import { RedisTransport, RedisUnavailableError, type RedisTransportOptions } from '@nest-sse/redis';
import { RedisServer, freePort } from '../../../test/utils/redis-server.js';
import { eventually, startApp } from '../../../test/utils/app.js';
import { LogRecorder } from './parts.js';

const context: SseTransportContext = {
  nodeId: 'n',
  deliver: () => undefined,
  localStats: () => ({ node: 'n', connected: 0, endpoints: {}, updatedAt: Date.now() }),
};

/** Starts a transport that must fail; resolves with the error and how long it took. */
async function startFailure(options: RedisTransportOptions): Promise<{ err: RedisUnavailableError; ms: number }> {
  const transport = new RedisTransport(options);
  const started = Date.now();
  try {
    await transport.start(context);
  } catch (err) {
    expect(err).toBeInstanceOf(RedisUnavailableError);
    return { err: err as RedisUnavailableError, ms: Date.now() - started };
  } finally {
    await transport.close();
  }
  throw new Error('expected start() to fail');
}

describe('RedisTransport start-up failures name their cause', () => {
  let secured: RedisServer;
  let small: RedisServer;
  const logs = new LogRecorder();

  beforeEach(() => {
    logs.lines = [];
  });

  beforeAll(async () => {
    logs.install();
    // set after start: the harness checks readiness with a plain PING
    secured = await RedisServer.start();
    const admin = new Redis(secured.url);
    await admin.config('SET', 'requirepass', 'right-password');
    admin.disconnect();
    small = await RedisServer.start({ args: ['--databases', '4'] });
  });

  afterAll(async () => {
    logs.restore();
    await secured?.stop();
    await small?.stop();
  });

  it('a wrong password fails at once, keeping the WRONGPASS reply as its cause', async () => {
    // connectTimeout longer than the test's own timeout: only the immediate failure can pass
    const { err, ms } = await startFailure({ url: `redis://:wrong@127.0.0.1:${secured.port}`, connectTimeout: 60_000 });
    console.log(`wrong password: failed after ${ms} ms`);
    expect(err.reason).toBe('auth');
    expect(err.message).toMatch(
      new RegExp(
        `^RedisTransport could not start: Redis at redis://127\\.0\\.0\\.1:${secured.port} refused the password \\(WRONGPASS`,
      ),
    );
    expect(err.message).not.toContain('wrong');
    expect((err.cause as Error).message).toMatch(/^WRONGPASS/);
    // the error says it all: no 'Lost Redis ... reconnecting' before it, as if it had been there
    expect(logs.lines.filter((line) => line.startsWith('warn'))).toEqual([]);
  });

  it('no password for a server that needs one fails at once with NOAUTH', async () => {
    const { err } = await startFailure({ url: secured.url, connectTimeout: 60_000 });
    expect(err.reason).toBe('auth');
    expect(err.message).toMatch(
      /requires a password and none was given: put it in url \(redis:\/\/:password@host:port\) or redisOptions\.password/,
    );
    expect((err.cause as Error).message).toMatch(/^NOAUTH/);
  });

  it('a database index the server does not have fails at once instead of running on database 0', async () => {
    const { err, ms } = await startFailure({ url: `${small.url}/9`, connectTimeout: 60_000 });
    console.log(`database out of range: failed after ${ms} ms`);
    expect(err.reason).toBe('database');
    expect(err.message).toMatch(
      /has no such database \(ERR DB index is out of range\): the index in url .* must be below the server's 'databases' setting/,
    );
    expect((err.cause as Error).message).toMatch(/DB index is out of range/);
    const db0 = new Redis(small.url);
    try {
      expect(await db0.keys('*')).toEqual([]);
    } finally {
      db0.disconnect();
    }
  });

  it('a database index in range is used', async () => {
    const transport = new RedisTransport({ url: `${small.url}/3`, prefix: 'db3' });
    await transport.start(context);
    const db3 = new Redis(`${small.url}/3`);
    const db0 = new Redis(small.url);
    try {
      expect((await db3.keys('{db3}*')).length).toBeGreaterThan(0);
      expect(await db0.keys('{db3}*')).toEqual([]);
    } finally {
      db3.disconnect();
      db0.disconnect();
      await transport.close();
    }
  });

  it('an unknown host fails at once (ENOTFOUND)', async () => {
    const { err, ms } = await startFailure({ url: 'redis://no-such-host.invalid:6379', connectTimeout: 60_000 });
    console.log(`unknown host: failed after ${ms} ms`);
    expect(err.reason).toBe('unknown-host');
    expect(err.message).toBe(
      "RedisTransport could not start: The Redis host of redis://no-such-host.invalid:6379 does not exist (DNS: ENOTFOUND). Check the host name in url (or the client's options).",
    );
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });

  it('rediss:// on a server without TLS times out with a hint at TLS', async () => {
    const { err } = await startFailure({ url: small.url.replace('redis:', 'rediss:'), connectTimeout: 1000 });
    expect(err.reason).toBe('timeout');
    expect(err.message).toMatch(/With rediss:\/\/, check that the server there speaks TLS \(else use redis:\/\/\)\.$/);
  });

  it('a refused connection is retried until connectTimeout, then named', async () => {
    const port = await freePort();
    const { err } = await startFailure({ url: `redis://127.0.0.1:${port}`, connectTimeout: 1000 });
    expect(err.reason).toBe('refused');
    expect(err.message).toBe(
      `RedisTransport could not start within 1000 ms (connectTimeout): Redis at redis://127.0.0.1:${port} refused the connection (ECONNREFUSED): is redis-server running there, on that port?`,
    );
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    // while it retries, the log says what it waits for and until when
    expect(logs.lines.filter((line) => line.startsWith('warn'))).toEqual([
      `warn Waiting for Redis at redis://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); the app fails to start if it is not ready within 1000 ms (connectTimeout).`,
    ]);
  });

  it('a Redis that comes up within connectTimeout is used, and the log says when it was reached', async () => {
    const late = await RedisServer.start();
    await late.kill();
    const transport = new RedisTransport({ url: late.url, connectTimeout: 20_000, maxReconnectDelay: 100 });
    const starting = transport.start(context);
    try {
      await eventually(
        () => logs.lines.some((line) => line.startsWith('warn Waiting for Redis')),
        10_000,
        'the wait to be logged',
      );
      await late.launch();
      await starting;
      expect(logs.lines.filter((line) => /^log Reached Redis after \d+ ms\.$/.test(line))).toHaveLength(1);
      expect(logs.lines.filter((line) => line.includes('Lost Redis'))).toEqual([]);
    } finally {
      await transport.close();
      await late.stop();
    }
  });

  it('an app with a wrong password fails to start with the same error', async () => {
    @SseEndpoint('/events')
    class EventsController {}
    const err = await startApp('express', {
      imports: [
        SseModule.forRoot(new RedisTransport({ url: `redis://:nope@127.0.0.1:${secured.port}`, connectTimeout: 60_000 })),
      ],
      controllers: [EventsController],
    }).then(
      async (t) => {
        await t.close();
        throw new Error('expected the app to fail to start');
      },
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as RedisUnavailableError).reason).toBe('auth');
  });
});

describe('RedisTransport options', () => {
  it.each([
    ['http://localhost:6379', /Its scheme is 'http'; use redis:\/\/ \(or rediss:\/\/ for TLS\)/],
    ['localhost:6379', /Its scheme is 'localhost'/],
    ['not a url', /It is not a URL/],
    ['redis://localhost:6379/db1', /Its path '\/db1' is not a database index/],
  ])('refuses url %s', (url, hint) => {
    let err: SseConfigurationError | undefined;
    try {
      new RedisTransport({ url });
    } catch (e) {
      err = e as SseConfigurationError;
    }
    expect(err).toBeInstanceOf(SseConfigurationError);
    expect(err!.option).toBe('url');
    expect(err!.message).toMatch(/^RedisTransport options: url is ".*"; it must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(err!.message).toMatch(hint);
  });

  it('accepts redis:// and rediss:// with or without a database index', () => {
    for (const url of [
      'redis://localhost',
      'redis://:pw@localhost:6380/2',
      'rediss://user:pw@example.com:6380',
      'redis://localhost:6379/',
    ]) {
      expect(() => new RedisTransport({ url })).not.toThrow();
    }
  });

  it('checks numbers, names unknown keys and refuses combinations that would be ignored', () => {
    expect(() => new RedisTransport({ publishTimeout: NaN })).toThrow(
      /publishTimeout is NaN; it must be an integer from 1 to 2147483647 \(ms\)/,
    );
    expect(() => new RedisTransport({ historySize: 0 })).toThrow(
      /historySize is 0; it must be an integer of at least 1 \(events\)/,
    );
    expect(() => new RedisTransport({ cleanupInterval: 0.5 })).toThrow(
      /cleanupInterval is 0\.5; it must be a number from 1 to 86400 \(seconds\)/,
    );
    expect(() => new RedisTransport({ prefix: 'my app' })).toThrow(
      /^RedisTransport options: prefix is "my app"; it must be 1 to 64 letters, digits, '_', '\.', ':' or '-'\.$/,
    );
    expect(() => new RedisTransport({ connectTimout: 100 } as any)).toThrow(
      /connectTimout is not a known option; did you mean connectTimeout\?/,
    );
    expect(() => new RedisTransport({ statsInterval: 5000, cleanupInterval: 2 })).toThrow(
      /statsInterval is 5000; it must be below cleanupInterval \(2000 ms\)/,
    );
    const client = new Redis({ lazyConnect: true });
    try {
      expect(() => new RedisTransport({ client, url: 'redis://x' })).toThrow(/url and client are both given/);
      expect(() => new RedisTransport({ client, redisOptions: { db: 1 } })).toThrow(/with client they would be ignored/);
    } finally {
      client.disconnect();
    }
  });
});
