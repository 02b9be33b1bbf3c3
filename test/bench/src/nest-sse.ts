// Subject 2 (and 5 with BENCH_REDIS_URL set): nest-sse as users run it, one @SseEndpoint and
// SseHub.broadcast, on the memory transport or on the Redis transport. With BENCH_GUARD=1 the
// stream route has a guard (a bearer token that sets `req.user`) and `trustedMetadata` from it,
// as an app with signed-in users has: the connect scenario shows what they cost. With
// BENCH_ADAPTER=fastify the app runs on Nest's Fastify adapter instead of Express.
// BENCH_PORT, BENCH_BACKLOG, BENCH_DRAIN_MS and BENCH_RETRY_MS are the storm scenario's knobs.
import 'reflect-metadata';
import {
  type CanActivate,
  type DynamicModule,
  type ExecutionContext,
  Injectable,
  Module,
  UnauthorizedException,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { SseEndpoint, SseHub, SseModule, type SseModuleOptions, type SseTransport } from '@nest-sse/core';
import { BENCH_TOKEN, type BenchSubject, fail, serve } from './harness.js';

@SseEndpoint('/stream')
class StreamController {}

/** A bearer-token check of the kind apps put in front of a stream: constant work per request. */
@Injectable()
class TokenGuard implements CanActivate {
  private readonly expected = `Bearer ${BENCH_TOKEN}`;

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    if (req.headers.authorization !== this.expected) throw new UnauthorizedException();
    req.user = { id: `u${req.socket.remotePort % 1000}` };
    return true;
  }
}

@SseEndpoint('/stream', {
  guards: { stream: [TokenGuard] },
  trustedMetadata: (req: { user: { id: string } }) => ({ user_id: req.user.id }),
})
class GuardedStreamController {}

@Module({})
class AppModule {
  static register(options: SseModuleOptions, guarded: boolean): DynamicModule {
    return {
      module: AppModule,
      imports: [SseModule.forRoot(options)],
      controllers: [guarded ? GuardedStreamController : StreamController],
      providers: guarded ? [TokenGuard] : [],
    };
  }
}

/** The Redis transport, loaded at run time so this file builds before that package exists. */
async function redisTransport(url: string): Promise<SseTransport> {
  const specifier = '@nest-sse/redis';
  const redis = (await import(specifier)) as { RedisTransport: new (options: { url: string }) => SseTransport };
  return new redis.RedisTransport({ url });
}

const numberEnv = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);

async function main(): Promise<void> {
  const url = process.env.BENCH_REDIS_URL;
  const options: SseModuleOptions = {
    transport: url ? await redisTransport(url) : undefined,
    drainTimeout: numberEnv('BENCH_DRAIN_MS'),
    defaults: { retry: numberEnv('BENCH_RETRY_MS') },
  };
  const module = AppModule.register(options, process.env.BENCH_GUARD === '1');
  const logger: ['error', 'warn'] = ['error', 'warn'];
  const app =
    process.env.BENCH_ADAPTER === 'fastify'
      ? await NestFactory.create(module, new FastifyAdapter(), { logger })
      : await NestFactory.create(module, { logger });
  app.enableShutdownHooks();
  const server = app.getHttpServer();
  if (process.env.BENCH_ADAPTER === 'fastify') {
    // Fastify serves once its instance is ready, which its own listen sees to (backlog: Node's default)
    await app.listen(numberEnv('BENCH_PORT') ?? 0, '127.0.0.1');
  } else {
    await app.init();
    // Node's default accept backlog is 511; the storm scenario tries larger ones
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(numberEnv('BENCH_PORT') ?? 0, '127.0.0.1', numberEnv('BENCH_BACKLOG') ?? 511, () => resolve());
    });
  }
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
  serve(subject, (server.address() as { port: number }).port);
}

main().catch(fail);
