import { describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { MemoryTransport, SseConfigurationError, SseEndpoint, SseHub, SseLifecycleError, SseModule } from '@nest-sse/core';
import { ADAPTERS, connect, startApp } from '../utils/app.js';

@SseEndpoint('/events')
class EventsController {}

@Injectable()
class Notifier {
  constructor(readonly hub: SseHub) {}
}

async function initError(imports: any[], controllers: any[] = [], providers: any[] = []): Promise<Error> {
  let app;
  try {
    const moduleRef = await Test.createTestingModule({ imports, controllers, providers }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  } catch (err) {
    return err as Error;
  } finally {
    await app?.close().catch(() => undefined);
  }
  throw new Error('expected the app to fail to start');
}

describe('one hub per app', () => {
  it('fails at start-up when forRoot() is imported by a feature module and by the root module, naming both', async () => {
    @Module({ imports: [SseModule.forRoot()], providers: [Notifier] })
    class FeatureModule {}
    @Module({ imports: [SseModule.forRoot(), FeatureModule], controllers: [EventsController] })
    class AppModule {}

    const err = await initError([AppModule]);
    expect(err).toBeInstanceOf(SseConfigurationError);
    expect(err.message).toMatch(/^SseModule is configured 2 times in this app \(imported by (AppModule, FeatureModule|FeatureModule, AppModule)\)/);
    expect(err.message).toMatch(/Import SseModule\.forRoot\(\) once, in the root module; it is global/);
  });

  it('counts forRootAsync too', async () => {
    @Module({ imports: [SseModule.forRootAsync({ useFactory: () => ({}) })] })
    class FeatureModule {}
    const err = await initError([SseModule.forRoot(), FeatureModule]);
    expect(err.message).toMatch(/configured 2 times in this app \(imported by RootTestModule, FeatureModule\)/);
  });

  describe.each(ADAPTERS)('over %s', (adapter) => {
    it('one forRoot() result imported in two places is one hub: the feature module broadcasts to the stream', async () => {
      const sse = SseModule.forRoot({ drainTimeout: 0 });
      @Module({ imports: [sse], providers: [Notifier], exports: [Notifier] })
      class FeatureModule {}
      const t = await startApp(adapter, { imports: [sse, FeatureModule], controllers: [EventsController] });
      try {
        expect(t.app.get(Notifier).hub).toBe(t.app.get(SseHub));
        const client = await connect(t.url, '/events');
        await client.waitFor('connection');
        expect(await t.app.get(Notifier).hub.broadcast({ data: 'from the feature' })).toBe(1);
        expect((await client.waitFor('message')).data).toBe('from the feature');
        client.close();
      } finally {
        await t.close();
      }
    });
  });
});

describe('without the module', () => {
  it('an @SseEndpoint app fails at start-up saying to import SseModule.forRoot()', async () => {
    const err = await initError([], [EventsController]);
    expect(err).toBeInstanceOf(SseConfigurationError);
    expect(err.message).toBe(
      'EventsController is an @SseEndpoint, but the app has no SseHub: import SseModule.forRoot() (or forRootAsync()) once, in the root module.',
    );
    expect(err.message).not.toMatch(/__nestSseHub/);
  });

  it("a service injecting SseHub fails with Nest's message naming SseHub", async () => {
    const err = await initError([], [], [Notifier]);
    expect(err.message).toMatch(/Nest can't resolve dependencies of the Notifier \(\?\)/);
    expect(err.message).toMatch(/SseHub/);
  });

  it("keeps the class's own onModuleInit", async () => {
    const seen: string[] = [];
    @SseEndpoint('/own-init')
    class OwnInitController {
      onModuleInit() {
        seen.push('init');
      }
    }
    const t = await startApp('express', { imports: [SseModule.forRoot()], controllers: [OwnInitController] });
    await t.close();
    expect(seen).toEqual(['init']);
  });
});

describe('broadcasts and the app lifecycle', () => {
  it('a broadcast before init() waits for the transport and is delivered once the app starts', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [EventsController] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const hub = app.get(SseHub);
    const early = hub.broadcast({ data: 'early' });
    try {
      await app.listen(0, '127.0.0.1');
      expect(await early).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('a broadcast before init() rejects after readyTimeout, saying what to do', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SseModule.forRoot({ readyTimeout: 200 })] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const err = await app.get(SseHub).broadcast({ data: 'x' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SseLifecycleError);
    expect((err as Error).message).toBe(
      'The broadcast waited 200 ms (readyTimeout) for the app to start and it did not: call app.init() or app.listen() before broadcasting, ' +
        'or broadcast from onApplicationBootstrap or later.',
    );
    await app.close();
  });

  it('a broadcast after close() rejects saying the app is closed', async () => {
    const t = await startApp('express', { imports: [SseModule.forRoot()], controllers: [EventsController] });
    const hub = t.app.get(SseHub);
    expect(await hub.broadcast({ data: 'open' })).toBe(0);
    await t.close();
    const err = await hub.broadcast({ data: 'late' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SseLifecycleError);
    expect((err as Error).message).toMatch(/^The broadcast was not sent: the application is closed \(app\.close\(\) was called\)/);
    await expect(hub.send('some-id', { data: 'late' })).resolves.toBe(false);
  });

  it('a broadcast after the transport failed to start rejects with that failure as its cause', async () => {
    class FailingTransport extends MemoryTransport {
      override async start(): Promise<void> {
        throw new Error('no route to the broker');
      }
    }
    const moduleRef = await Test.createTestingModule({ imports: [SseModule.forRoot(new FailingTransport())] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const hub = app.get(SseHub);
    const pending = hub.broadcast({ data: 'x' }).catch((e: Error) => e);
    await expect(app.init()).rejects.toThrow('no route to the broker');
    const err = (await pending) as Error;
    expect(err).toBeInstanceOf(SseLifecycleError);
    expect(err.message).toBe('The broadcast was not sent: the SSE transport failed to start (no route to the broker).');
    expect((err.cause as Error).message).toBe('no route to the broker');
    await app.close().catch(() => undefined);
  });
});
