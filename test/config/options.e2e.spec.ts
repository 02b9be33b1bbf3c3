import { describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  MemoryTransport,
  SSE_MODULE_OPTIONS,
  SseConfigurationError,
  SseEndpoint,
  SseMetricsModule,
  SseModule,
  type SseModuleOptions,
} from '@nest-sse/core';
import { ADAPTERS, connect, postJson, startApp } from '../utils/app.js';

/** The error `fn` throws, for its fields. */
function thrown(fn: () => unknown): SseConfigurationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SseConfigurationError);
    return err as SseConfigurationError;
  }
  throw new Error('expected an SseConfigurationError');
}

/** The error an app fails to start with. */
async function startupError(imports: any[], controllers: any[] = []): Promise<SseConfigurationError> {
  let app;
  try {
    const moduleRef = await Test.createTestingModule({ imports, controllers }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  } catch (err) {
    expect(err).toBeInstanceOf(SseConfigurationError);
    return err as SseConfigurationError;
  } finally {
    await app?.close().catch(() => undefined);
  }
  throw new Error('expected the app to fail to start');
}

@SseEndpoint('/events')
class EventsController {}

describe('module options', () => {
  it.each([
    [
      'retry NaN (an unset variable)',
      { defaults: { retry: Number(process.env.NEST_SSE_UNSET) } },
      'defaults.retry',
      /is NaN; it must be an integer from 0 to 2147483647 \(ms\)/,
    ],
    [
      'a negative heartbeat',
      { defaults: { heartbeatInterval: -1 } },
      'defaults.heartbeatInterval',
      /is -1; it must be 0 \(no heartbeats\) or an integer from 1 to 86400 \(seconds\)/,
    ],
    ['a NaN heartbeat', { defaults: { heartbeatInterval: NaN } }, 'defaults.heartbeatInterval', /is NaN/],
    ['a heartbeat of a millisecond', { defaults: { heartbeatInterval: 0.001 } }, 'defaults.heartbeatInterval', /is 0\.001/],
    ['a string count', { maxConnections: '100' }, 'maxConnections', /is "100"; it must be an integer of at least 1/],
    ['no connections at all', { maxConnections: 0 }, 'maxConnections', /is 0/],
    ['a fractional drain', { drainTimeout: 1.5 }, 'drainTimeout', /integer from 0 to 2147483647 \(ms\)/],
    ['a negative replay limit', { replayLimit: -1 }, 'replayLimit', /at least 0 \(events\)/],
    [
      'an unknown policy',
      { defaults: { slowClientPolicy: 'drop' } },
      'defaults.slowClientPolicy',
      /one of "disconnect", "drop-oldest"/,
    ],
    ['a metadata limit of zero', { defaults: { metadata: { maxKeys: 0 } } }, 'defaults.metadata.maxKeys', /is 0/],
    [
      'a bad allowed key',
      { defaults: { metadata: { allowedKeys: ['ok', 'not ok'] } } },
      'defaults.metadata.allowedKeys[1]',
      /"not ok"; it must be a metadata name/,
    ],
    [
      'an event name with a line break',
      { defaults: { welcome: { event: 'a\nb', data: 1 } } },
      'defaults.welcome.event',
      /without CR, LF or NUL/,
    ],
    ['a welcome without data', { defaults: { welcome: { event: 'hi' } } }, 'defaults.welcome.data', /needs data/],
    ['welcome: true', { defaults: { welcome: true } }, 'defaults.welcome', /is true; it must be false, or an object with data/],
    [
      'a per-key limit without its max',
      { defaults: { maxConnectionsPerKey: { key: 'user_id' } } },
      'defaults.maxConnectionsPerKey.max',
      /needs max/,
    ],
    [
      'a guard that is a string',
      { defaults: { guards: { broadcast: ['AdminGuard'] } } },
      'defaults.guards.broadcast[0]',
      /a guard class or instance/,
    ],
    [
      'a transport that is not one',
      { transport: { publish() {} } },
      'transport',
      /an SseTransport \(backend, start, publish, replay, clusterStats and close\)/,
    ],
  ] as Array<[string, unknown, string, RegExp]>)(
    'refuses %s, naming the option, the value and the rule',
    (_name, options, option, rule) => {
      const err = thrown(() => SseModule.forRoot(options as SseModuleOptions));
      expect(err.option).toBe(option);
      expect(err.message).toContain(`SseModule.forRoot options: ${option} is`);
      expect(err.message).toMatch(rule);
      expect(err.rule).toBeTruthy();
    },
  );

  it('refuses an unknown key and suggests the nearest known name', () => {
    const top = thrown(() => SseModule.forRoot({ maxConnection: 10 } as any));
    expect(top.message).toBe(
      'SseModule.forRoot options: maxConnection is not a known option; did you mean maxConnections? ' +
        'Known options: transport, defaults, maxConnections, drainTimeout, replayLimit, readyTimeout.',
    );
    expect(top.option).toBe('maxConnection');
    const nested = thrown(() => SseModule.forRoot({ defaults: { heartbeatIntervall: 5 } } as any));
    expect(nested.message).toMatch(
      /defaults\.heartbeatIntervall is not a known option; did you mean defaults\.heartbeatInterval\?/,
    );
    const access = thrown(() => SseModule.forRoot({ defaults: { access: { stats: 'open' } } } as any));
    expect(access.option).toBe('defaults.access.stats');
    expect(access.message).toMatch(/is "open"; it must be one of "guarded", "global-guards", "public", "disabled"/);
    const far = thrown(() => SseModule.forRoot({ colour: 'blue' } as any));
    expect(far.message).toMatch(/colour is not a known option\. Known options: /);
  });

  it('refuses null and other values that are neither options nor a transport', () => {
    expect(thrown(() => SseModule.forRoot(null as any)).message).toBe(
      'SseModule.forRoot got null. Give the module options ({ transport, defaults, ... }), a transport, or {} for the in-memory transport with every default.',
    );
    expect(thrown(() => SseModule.forRoot(5 as any)).message).toMatch(/^SseModule\.forRoot got 5; it takes a transport/);
  });

  it('states the rule of every item of a list', () => {
    const err = thrown(() => SseModule.forRoot({ defaults: { allowedEvents: [] } }));
    expect(err.message).toBe(
      'SseModule.forRoot options: defaults.allowedEvents is an array of 0; it must be a non-empty list, each item an event name of 1 to 256 characters without CR, LF or NUL.',
    );
    expect(thrown(() => SseModule.forRoot({ defaults: { guards: { stream: class {} as any } } })).message).toMatch(
      /guards\.stream is a function \(\w+\); it must be a list, each item a guard class or instance \(with canActivate\)\.$/,
    );
  });

  it("refuses 'disabled' in defaults.access and says where it belongs", () => {
    const err = thrown(() => SseModule.forRoot({ defaults: { access: { broadcast: 'disabled' } } }));
    expect(err.option).toBe('defaults.access.broadcast');
    expect(err.message).toMatch(/@SseEndpoint\(path, \{ access: \{ broadcast: 'disabled' \} \}\)/);
  });

  it('checks MemoryTransport options', () => {
    expect(thrown(() => new MemoryTransport({ historySize: -1 })).message).toMatch(/MemoryTransport options: historySize is -1/);
    expect(thrown(() => new MemoryTransport({ historyMaxAge: NaN })).option).toBe('historyMaxAge');
    expect(thrown(() => new MemoryTransport({ histroySize: 5 } as any)).message).toMatch(/did you mean historySize\?/);
  });
});

describe('endpoint options', () => {
  it('are checked where the class is defined, naming the class and path', () => {
    const err = thrown(() => {
      @SseEndpoint('/feed', { heartbeatInterval: 0.5 })
      class FeedController {}
      return FeedController;
    });
    expect(err.message).toMatch(
      /^@SseEndpoint\('\/feed'\) on FeedController: heartbeatInterval is 0\.5; it must be 0 \(no heartbeats\) or an integer/,
    );
    const typo = thrown(() => {
      @SseEndpoint('/feed', { acess: { stats: 'public' } } as any)
      class FeedController {}
      return FeedController;
    });
    expect(typo.message).toMatch(/acess is not a known option; did you mean access\?/);
    const path = thrown(() => SseEndpoint(undefined as any)(class Nameless {}));
    expect(path.message).toMatch(/the path is undefined; it must be a string/);
    expect(path.option).toBe('path');
    const whole = thrown(() => SseEndpoint('/feed', null as any)(class Feed {}));
    expect(whole.message).toMatch(/^@SseEndpoint\('\/feed'\) on Feed: the options are null; they must be an object with /);
  });
});

describe('options that cannot work together', () => {
  it('a per-key limit on a key that never becomes metadata fails the start, with the defaults merged', async () => {
    @SseEndpoint('/rooms', { metadata: { allowedKeys: ['room'] } })
    class RoomsController {}
    const err = await startupError(
      [SseModule.forRoot({ defaults: { maxConnectionsPerKey: { key: 'user_id', max: 3 } } })],
      [RoomsController],
    );
    expect(err.option).toBe('maxConnectionsPerKey.key');
    expect(err.message).toBe(
      `@SseEndpoint('/rooms') on RoomsController: maxConnectionsPerKey.key is "user_id", which never becomes this endpoint's metadata: ` +
        `metadata.allowedKeys (room) leaves it out and there is no trustedMetadata, so the limit would never apply. ` +
        `Add 'user_id' to allowedKeys, or give it in trustedMetadata.`,
    );
  });

  it('the same key given by trustedMetadata, or allowed in the query, is fine', async () => {
    @SseEndpoint('/trusted', { metadata: { allowedKeys: [] }, trustedMetadata: () => ({ user_id: '1' }) })
    class TrustedController {}
    @SseEndpoint('/queried', { metadata: { allowedKeys: ['user_id'] } })
    class QueriedController {}
    const moduleRef = await Test.createTestingModule({
      imports: [SseModule.forRoot({ defaults: { maxConnectionsPerKey: { key: 'user_id', max: 3 } } })],
      controllers: [TrustedController, QueriedController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await app.close();
  });
});

describe('SseMetricsModule.forRoot options', () => {
  it('refuses an unknown key, a prefix that cannot start a metric name and a registry that is not one', () => {
    expect(thrown(() => SseMetricsModule.forRoot({ prefx: 'app_' } as any)).message).toBe(
      'SseMetricsModule.forRoot options: prefx is not a known option; did you mean prefix? Known options: registry, prefix.',
    );
    const prefix = thrown(() => SseMetricsModule.forRoot({ prefix: 'my-app_' }));
    expect(prefix.option).toBe('prefix');
    expect(prefix.message).toMatch(/prefix is "my-app_"; it must be the start of a Prometheus metric name/);
    expect(thrown(() => SseMetricsModule.forRoot({ registry: {} as any })).message).toMatch(
      /registry is an object; it must be a prom-client Registry/,
    );
    expect(() => SseMetricsModule.forRoot({ prefix: 'chat_sse_' })).not.toThrow();
  });
});

describe('SSE_MODULE_OPTIONS put in place of the module options (overrideProvider in a test)', () => {
  it('is checked too: a misspelt option fails the start instead of being ignored', async () => {
    let app;
    let error: unknown;
    try {
      const moduleRef = await Test.createTestingModule({ imports: [SseModule.forRoot()], controllers: [EventsController] })
        .overrideProvider(SSE_MODULE_OPTIONS)
        .useValue({ drainTimout: 0 })
        .compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.init();
    } catch (err) {
      error = err;
    } finally {
      await app?.close();
    }
    expect(error).toBeInstanceOf(SseConfigurationError);
    expect((error as Error).message).toMatch(
      /^SseModule options \(the SSE_MODULE_OPTIONS provider\): drainTimout is not a known option; did you mean drainTimeout\?/,
    );
  });
});

describe('forRootAsync', () => {
  it('fails to start when the factory returns nothing, instead of falling back to memory', async () => {
    const err = await startupError([SseModule.forRootAsync({ useFactory: () => undefined as any })], [EventsController]);
    expect(err.message).toMatch(/^SseModule\.forRootAsync useFactory returned undefined\. Return the module options/);
  });

  it('fails to start when the factory returns a wrong shape', async () => {
    expect((await startupError([SseModule.forRootAsync({ useFactory: () => 'redis://x' as any })])).message).toMatch(
      /useFactory returned "redis:\/\/x"; it takes a transport/,
    );
    const typo = await startupError([SseModule.forRootAsync({ useFactory: async () => ({ defaults: { retyr: 10 } }) as any })]);
    expect(typo.message).toMatch(
      /^SseModule\.forRootAsync useFactory options: defaults\.retyr is not a known option; did you mean defaults\.retry\?/,
    );
  });

  it('names a useClass factory that returns nothing', async () => {
    @Injectable()
    class Config {
      createSseOptions() {
        return undefined as any;
      }
    }
    expect((await startupError([SseModule.forRootAsync({ useClass: Config })])).message).toMatch(
      /^SseModule\.forRootAsync useClass Config\.createSseOptions\(\) returned undefined/,
    );
  });

  it('refuses unknown keys and more than one way to make the options', () => {
    expect(thrown(() => SseModule.forRootAsync({ useFactroy: () => ({}) } as any)).message).toMatch(
      /useFactroy is not a known option; did you mean useFactory\?/,
    );
    @Injectable()
    class Config {
      createSseOptions() {
        return {};
      }
    }
    expect(thrown(() => SseModule.forRootAsync({ useFactory: () => ({}), useClass: Config })).message).toMatch(
      /got useFactory and useClass; give exactly one/,
    );
  });
});

/** Every option at a valid value: nothing valid is refused, and the app serves. */
describe.each(ADAPTERS)('a full valid configuration over %s', (adapter) => {
  it('starts and serves a stream and a broadcast', async () => {
    @SseEndpoint('/all', {
      heartbeatInterval: 0,
      retry: 0,
      welcome: { event: 'hi', data: { ok: true } },
      metadata: { allowedKeys: ['room'], maxKeys: 1, maxValuesPerKey: 1, maxValueLength: 8 },
      trustedMetadata: () => ({}),
      authorize: () => true,
      guards: { stream: [], stats: [], broadcast: [] },
      interceptors: {},
      access: { stats: 'public', broadcast: 'public' },
      allowedEvents: ['hi', 'news'],
      maxBodySize: 1024,
      maxConnections: 5,
      maxConnectionsPerKey: { key: 'room', max: 5 },
      maxBufferSize: 65_536,
      slowClientPolicy: 'drop-oldest',
      directSocket: false,
    })
    class AllController {}

    @Module({
      imports: [
        SseModule.forRoot({
          transport: new MemoryTransport({ historySize: 0, historyMaxAge: 1 }),
          defaults: { heartbeatInterval: 86_400, retry: 2_147_483_647, access: { stats: 'global-guards' } },
          maxConnections: 10,
          drainTimeout: 0,
          replayLimit: 0,
          readyTimeout: 1000,
        }),
      ],
      controllers: [AllController],
    })
    class AppModule {}

    const t = await startApp(adapter, { imports: [AppModule] });
    try {
      const client = await connect(t.url, '/all?room=a', { events: ['hi', 'news'] });
      expect(JSON.parse((await client.waitFor('hi')).data)).toEqual({ ok: true });
      const res = await postJson(`${t.url}/all/broadcast`, { message: 'm', event_type: 'news' });
      expect(res.status).toBe(200);
      expect((await client.waitFor('news')).data).toBe('m');
      expect(t.app.get<SseModuleOptions>(SSE_MODULE_OPTIONS).readyTimeout).toBe(1000);
      client.close();
    } finally {
      await t.close();
    }
  });
});
