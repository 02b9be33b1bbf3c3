import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication, type LoggerService, Module, VersioningType } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { gzipSync } from 'node:zlib';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { SseEndpoint, SseEventError, SseHub, SseModule } from '@nest-sse/core';
import { ADAPTERS, type AdapterName, connect, postBytes, postJson, request } from '../utils/app.js';

/** Keeps what Nest logs, to check the route map. */
class Recorder implements LoggerService {
  lines: string[] = [];
  log(message: unknown) {
    this.lines.push(String(message));
  }
  warn(message: unknown) {
    this.lines.push(`WARN ${String(message)}`);
  }
  error(message: unknown) {
    this.lines.push(`ERROR ${String(message)}`);
  }
}

// @Controller above @SseEndpoint (applied after it) ...
@Controller({ path: 'admin', version: '2' })
@SseEndpoint('events', { access: { stats: 'public', broadcast: 'disabled' } })
class AdminEventsController {
  @Get('ping')
  ping() {
    return 'pong';
  }
}

// ... and below it (applied before): the same placement
@SseEndpoint('/alerts', { access: { stats: 'public', broadcast: 'public' } })
@Controller('ops')
class OpsAlertsController {}

// no @Controller: the decorator's path is the controller path
@SseEndpoint('/plain', { access: { broadcast: 'public' } })
class PlainController {}

@Module({ controllers: [AdminEventsController, OpsAlertsController] })
class FeatureModule {}

@Module({
  imports: [
    SseModule.forRoot({ drainTimeout: 0 }),
    FeatureModule,
    RouterModule.register([{ path: 'feature', module: FeatureModule }]),
  ],
  controllers: [PlainController],
})
class AppModule {}

describe.each(ADAPTERS)('endpoints where Nest puts them, over %s', (adapter: AdapterName) => {
  let app: INestApplication;
  let url: string;
  const logs = new Recorder();

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app =
      adapter === 'fastify'
        ? moduleRef.createNestApplication(new FastifyAdapter() as any, { logger: logs })
        : moduleRef.createNestApplication({ logger: logs });
    app.setGlobalPrefix('api');
    app.enableVersioning({ type: VersioningType.URI });
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
  });

  it('serves the stream and stats under the global prefix, version, RouterModule path and @Controller path', async () => {
    const client = await connect(url, '/api/v2/feature/admin/events');
    await client.waitFor('connection');
    const stats = await request(`${url}/api/v2/feature/admin/events/stats`);
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ endpoint: '/events', endpoint_clients: 1 });
    // the class's own route sits under its @Controller path, as Nest says
    expect((await request(`${url}/api/v2/feature/admin/ping`)).text).toBe('pong');
    client.close();
  });

  it('places the routes the same whichever side of @SseEndpoint the @Controller is', async () => {
    const client = await connect(url, '/api/feature/ops/alerts');
    await client.waitFor('connection');
    const res = await postJson(`${url}/api/feature/ops/alerts/broadcast`, { message: 'fire' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ endpoint: '/alerts', endpoint_clients: 1, reached_on_this_node: 1 });
    expect((await client.waitFor('message')).data).toBe('fire');
    client.close();
    expect((await request(`${url}/api/plain/stats`)).status).toBe(403);
  });

  it('reads a broadcast body at the path Nest serves it (prefix, RouterModule): chunked and gzip held to maxBodySize', async () => {
    const route = `${url}/api/feature/ops/alerts/broadcast`;
    const big = Buffer.from(JSON.stringify({ message: 'x'.repeat(70 * 1024) }));
    for (const [body, headers] of [
      [big, { 'transfer-encoding': 'chunked' }],
      [gzipSync(big), { 'content-encoding': 'gzip' }],
    ] as const) {
      const refused = await postBytes(route, body, headers);
      expect(refused.status).toBe(413);
      expect(refused.body.message).toMatch(/larger than 65536 bytes.*maxBodySize/);
    }
    const fits = await postBytes(route, gzipSync(JSON.stringify({ message: 'zipped' })), { 'content-encoding': 'gzip' });
    expect(fits.status).toBe(200);
  });

  it('logs the routes Nest mapped, and a disabled route is not mapped at all', async () => {
    const mapped = logs.lines.filter((line) => line.startsWith('Mapped {'));
    expect(mapped).toEqual(
      expect.arrayContaining([
        'Mapped {/api/feature/admin/events, GET} (version: 2) route',
        'Mapped {/api/feature/admin/events/stats, GET} (version: 2) route',
        'Mapped {/api/feature/ops/alerts, GET} route',
        'Mapped {/api/feature/ops/alerts/stats, GET} route',
        'Mapped {/api/feature/ops/alerts/broadcast, POST} route',
        'Mapped {/api/plain, GET} route',
      ]),
    );
    expect(mapped.filter((line) => line.includes('/events/broadcast'))).toEqual([]);
    expect((await postJson(`${url}/api/v2/feature/admin/events/broadcast`, { message: 'x' })).status).toBe(404);
    // the start-up warning names the path the route is served at
    expect(logs.lines).toContain(
      "WARN GET /api/v2/feature/admin/events/stats is public (access: 'public'): anyone who can reach this server may call it.",
    );
  });

  it('broadcast({ endpoint }) takes the decorator path or the full path, and refuses an unknown one naming the known ones', async () => {
    const hub = app.get(SseHub);
    const client = await connect(url, '/api/v2/feature/admin/events');
    await client.waitFor('connection');
    expect(await hub.broadcast({ data: 'by name', endpoint: '/events' })).toBe(1);
    expect((await client.waitFor('message')).data).toBe('by name');
    expect(await hub.broadcast({ data: 'by full path', endpoint: '/api/v2/feature/admin/events' })).toBe(1);
    await client.waitForCount(2, 'message');
    expect(await hub.broadcast({ data: 'no slash', endpoint: 'events' })).toBe(1);
    const err = await hub.broadcast({ data: 'x', endpoint: '/evnets' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SseEventError);
    expect((err as Error).message).toBe(
      "No endpoint '/evnets' in this app; did you mean '/events'? Its endpoints are /plain, /events, /alerts (the @SseEndpoint paths; the full paths they are served at are accepted too).",
    );
    expect(((await hub.broadcast({ data: 'x', endpoint: 'nothing-like-it' }).catch((e: Error) => e)) as Error).message).toMatch(
      /^No endpoint 'nothing-like-it' in this app\. Its endpoints are /,
    );
    client.close();
  });

  it('refuses a misspelt field of a broadcast or a message instead of sending to everyone', async () => {
    const hub = app.get(SseHub);
    const err = await hub.broadcast({ data: 'private', filtr: { user_id: '1' } } as any).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SseEventError);
    expect((err as Error).message).toBe(
      "'filtr' is not a field of a broadcast; did you mean 'filter'? Its fields are event, data, id, filter, endpoint.",
    );
    expect(((await hub.broadcast({ data: 'x', endpiont: '/events' } as any).catch((e: Error) => e)) as Error).message).toMatch(
      /did you mean 'endpoint'\?/,
    );
    expect(((await hub.broadcast({ data: 'x', endpoint: 5 } as any).catch((e: Error) => e)) as Error).message).toBe(
      "a broadcast's endpoint must be a string such as '/events' (got 5)",
    );
    expect(((await hub.send('any-id', { data: 'x', evnt: 'a' } as any).catch((e: Error) => e)) as Error).message).toBe(
      "'evnt' is not a field of a message; did you mean 'event'? Its fields are event, data, id.",
    );
  });
});

/** A route parameter in the global prefix: the body reader still finds the broadcast route. */
describe.each(ADAPTERS)('a broadcast route under a prefix with a route parameter, over %s', (adapter: AdapterName) => {
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [PlainController],
    }).compile();
    app =
      adapter === 'fastify'
        ? moduleRef.createNestApplication(new FastifyAdapter() as any, { logger: false })
        : moduleRef.createNestApplication({ logger: false });
    app.setGlobalPrefix('t/:tenant');
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
  });

  it('holds chunked and gzip bodies to maxBodySize, and delivers one that fits', async () => {
    const route = `${url}/t/acme/plain/broadcast`;
    const big = Buffer.from(JSON.stringify({ message: 'x'.repeat(70 * 1024) }));
    expect((await postBytes(route, big, { 'transfer-encoding': 'chunked' })).status).toBe(413);
    expect((await postBytes(route, gzipSync(big), { 'content-encoding': 'gzip' })).status).toBe(413);
    const client = await connect(url, '/t/acme/plain');
    await client.waitFor('connection');
    const fits = await postBytes(route, gzipSync(JSON.stringify({ message: 'zipped' })), {
      'content-encoding': 'gzip',
      'transfer-encoding': 'chunked',
    });
    expect(fits.status).toBe(200);
    expect((await client.waitFor('message')).data).toBe('zipped');
    client.close();
  });
});
