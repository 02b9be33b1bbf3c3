// Subject 2 (and 5 with BENCH_REDIS_URL set): nest-sse as users run it, one @SseEndpoint and
// SseHub.broadcast, on the memory transport or on the Redis transport.
import 'reflect-metadata';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SseEndpoint, SseHub, SseModule, type SseTransport } from '@nest-sse/core';
import { type BenchSubject, fail, serve } from './harness.js';

@SseEndpoint('/stream')
class StreamController {}

@Module({ controllers: [StreamController] })
class AppModule {
  static register(transport?: SseTransport): DynamicModule {
    return { module: AppModule, imports: [SseModule.forRoot(transport ? { transport } : {})] };
  }
}

/** The Redis transport, loaded at run time so this file builds before that package exists. */
async function redisTransport(url: string): Promise<SseTransport> {
  const specifier = '@nest-sse/redis';
  const redis = (await import(specifier)) as { RedisTransport: new (options: { url: string }) => SseTransport };
  return new redis.RedisTransport({ url });
}

async function main(): Promise<void> {
  const url = process.env.BENCH_REDIS_URL;
  const transport = url ? await redisTransport(url) : undefined;
  const app = await NestFactory.create(AppModule.register(transport), { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const hub = app.get(SseHub);
  await hub.ready;
  const report = (err: unknown): void => {
    process.send?.({ type: 'error', message: (err as Error)?.stack ?? String(err) });
  };
  const subject: BenchSubject = {
    connections: () => hub.localStats().connected,
    publish(data, group) {
      hub.broadcast({ event: 'tick', data, filter: group === undefined ? undefined : { group } }).catch(report);
    },
    close: () => app.close(),
  };
  serve(subject, (app.getHttpServer().address() as { port: number }).port);
}

main().catch(fail);
