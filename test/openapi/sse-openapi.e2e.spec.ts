import { describe, it, expect, afterEach } from '@jest/globals';
import { Controller, Get, type INestApplication, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { SseEndpoint, SseHub, SseModule, type SseModuleOptions } from '@nest-sse/core';
import { ADAPTERS, connect, type AdapterName } from '../utils/app.js';
import { TokenGuard } from '../e2e/fixtures.js';

@SseEndpoint('/channels', {
  metadata: { allowedKeys: ['channel'] },
  guards: { stats: [TokenGuard], broadcast: [TokenGuard] },
  allowedEvents: ['update', 'alert'],
})
class ChannelsController {}

@SseEndpoint('/quiet', { access: { stats: 'disabled', broadcast: 'disabled' } })
class QuietController {}

/** Takes its allowed keys from the module's defaults, and a metadata limit of its own. */
@SseEndpoint('/rooms', { metadata: { maxKeys: 1 } })
class RoomsController {}

@Controller('health')
class HealthController {
  @Get()
  health(): string {
    return 'ok';
  }
}

/** The app as a main.ts builds it: the document is made before listen (so before onModuleInit). */
async function documentOf(
  adapter: AdapterName,
  options: SseModuleOptions = {},
  controllers: Type[] = [ChannelsController, QuietController, HealthController],
): Promise<{ app: INestApplication; document: OpenAPIObject }> {
  const moduleRef = await Test.createTestingModule({ imports: [SseModule.forRoot(options)], controllers }).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter() as any, { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  const document = SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('nest-sse').build());
  return { app, document };
}

describe.each(ADAPTERS)('OpenAPI document of the generated routes over %s', (adapter) => {
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('documents the stream as text/event-stream, with its query and Last-Event-ID', async () => {
    const built = await documentOf(adapter);
    app = built.app;
    const stream = built.document.paths['/channels'].get!;
    expect(stream.summary).toBe('Event stream of /channels');
    expect(Object.keys((stream.responses['200'] as any).content)).toEqual(['text/event-stream']);
    expect(Object.keys((stream.responses['429'] as any).content)).toEqual(['application/json']);
    const params = (stream.parameters ?? []) as any[];
    expect(params.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['header:Last-Event-ID', 'query:channel', 'query:lastEventId']);
  });

  it('documents the broadcast body and answer, and the stats answer', async () => {
    const built = await documentOf(adapter);
    app = built.app;
    const broadcast = built.document.paths['/channels/broadcast'].post!;
    const body = (broadcast.requestBody as any).content['application/json'].schema;
    expect(Object.keys(body.properties).sort()).toEqual(['event_type', 'filter', 'id', 'message']);
    expect(body.required).toEqual(['message']);
    expect(broadcast.description).toContain('Allowed event types: update, alert');
    expect((broadcast.parameters ?? []).length).toBe(0);
    const answer = (broadcast.responses['200'] as any).content['application/json'].schema;
    expect(Object.keys(answer.properties)).toEqual(['success', 'endpoint', 'endpoint_clients', 'reached_on_this_node', 'node', 'clients', 'clients_reached']);
    for (const status of ['400', '403', '413', '415']) expect(broadcast.responses).toHaveProperty(status);

    const stats = built.document.paths['/channels/stats'].get!;
    const statsSchema = (stats.responses['200'] as any).content['application/json'].schema;
    expect(statsSchema.properties.connected_clients).toEqual(expect.objectContaining({ type: 'integer' }));
    expect(statsSchema.properties.nodes.type).toBe('array');
  });

  it("documents the query keys the endpoint takes: the defaults' allowedKeys merged with its own metadata options", async () => {
    const built = await documentOf(adapter, { defaults: { metadata: { allowedKeys: ['room'] } } }, [RoomsController, ChannelsController]);
    app = built.app;
    const names = (path: string) => ((built.document.paths[path].get!.parameters ?? []) as any[]).map((p) => `${p.in}:${p.name}`).sort();
    expect(names('/rooms')).toEqual(['header:Last-Event-ID', 'query:lastEventId', 'query:room']);
    // the endpoint's own allowedKeys replace the defaults' list
    expect(names('/channels')).toEqual(['header:Last-Event-ID', 'query:channel', 'query:lastEventId']);

    // and the stream behaves as documented: only room becomes metadata, within maxKeys 1
    await app.listen(0);
    const client = await connect((await app.getUrl()).replace('[::1]', '127.0.0.1'), '/rooms?room=a&tag=b');
    const streams = [...app.get(SseHub).streams('/rooms')];
    client.close();
    expect(streams.map((stream) => ({ ...stream.metadata }))).toEqual([{ room: 'a' }]);
  });

  it('leaves disabled routes out and other controllers alone', async () => {
    const built = await documentOf(adapter);
    app = built.app;
    const paths = Object.keys(built.document.paths).sort();
    expect(paths).toEqual(['/channels', '/channels/broadcast', '/channels/stats', '/health', '/quiet']);
    expect(built.document.paths['/health'].get!.responses['200']).toBeDefined();
    expect(JSON.stringify(built.document.paths['/health'])).not.toContain('event-stream');
  });

  it('gives the same document when built again in the same process', async () => {
    const first = await documentOf(adapter);
    const again = await documentOf(adapter);
    await first.app.close();
    app = again.app;
    expect(again.document.paths).toEqual(first.document.paths);
  });
});
