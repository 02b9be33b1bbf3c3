// Subject 2 (and 5 with BENCH_REDIS_URL set): nest-sse as users run it, one @SseEndpoint and
// SseHub.broadcast, on the memory transport or on the Redis transport. With BENCH_GUARD=1 the
// stream route has a guard (a bearer token that sets `req.user`) and `trustedMetadata` from it,
// as an app with signed-in users has: the connect scenario shows what they cost. With
// BENCH_ADAPTER=fastify the app runs on Nest's Fastify adapter instead of Express.
// BENCH_PORT, BENCH_BACKLOG, BENCH_DRAIN_MS and BENCH_RETRY_MS are the storm scenario's knobs.
// The routed scenario's: BENCH_REDIS_PREFIX, BENCH_ROUTE_BY (the transport's `routeBy`),
// BENCH_FILTER_KEY (the metadata key a group is published to; `group` by default), and
// BENCH_COUNT=1, which counts the envelopes the transport hands to the hub and those no stream
// of this node took (the `extra` of the stats reply).
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
import {
  SseEndpoint,
  SseHub,
  SseModule,
  type SseModuleOptions,
  type SseTransport,
  type SseTransportContext,
} from '@nest-sse/core';
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

interface RedisOptions {
  url: string;
  prefix?: string;
  routeBy?: string;
}

/** The Redis transport, loaded at run time so this file builds before that package exists. */
async function redisTransport(options: RedisOptions): Promise<SseTransport> {
  const specifier = '@nest-sse/redis';
  const redis = (await import(specifier)) as { RedisTransport: new (options: RedisOptions) => SseTransport };
  return new redis.RedisTransport(options);
}

/** Envelopes the transport handed to the hub, and those that reached no stream here. */
const envelopes = { received: 0, unmatched: 0 };

/**
 * Counts what the transport delivers (BENCH_COUNT=1): the hub's `delivered` counter tells whether
 * an envelope reached a stream of this node.
 */
function counting(transport: SseTransport, delivered: () => number): SseTransport {
  const start = transport.start.bind(transport);
  transport.start = (context: SseTransportContext) =>
    start({
      ...context,
      deliver: (envelope) => {
        const before = delivered();
        context.deliver(envelope);
        envelopes.received++;
        if (delivered() === before) envelopes.unmatched++;
      },
    });
  return transport;
}

const numberEnv = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
const env = (name: string): string | undefined => process.env[name] || undefined;

async function main(): Promise<void> {
  const url = process.env.BENCH_REDIS_URL;
  /** The hub, once the app is made. */
  const made: { hub?: { counters: { delivered: number } } } = {};
  let transport = url
    ? await redisTransport({ url, prefix: env('BENCH_REDIS_PREFIX'), routeBy: env('BENCH_ROUTE_BY') })
    : undefined;
  if (transport && process.env.BENCH_COUNT === '1') transport = counting(transport, () => made.hub?.counters.delivered ?? 0);
  const filterKey = env('BENCH_FILTER_KEY') ?? 'group';
  const options: SseModuleOptions = {
    transport,
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
  made.hub = hub;
  await hub.ready;
  const report = (err: unknown): void => {
    process.send?.({ type: 'error', message: (err as Error)?.stack ?? String(err) });
  };
  const metrics = (transport as { metrics?: () => Record<string, number> } | undefined)?.metrics?.bind(transport);
  const subject: BenchSubject = {
    connections: () => hub.localStats().connected,
    publish(data, group) {
      hub.broadcast({ event: 'tick', data, filter: group === undefined ? undefined : { [filterKey]: group } }).catch(report);
    },
    close: () => app.close(),
    extraStats: () => ({ ...hub.counters, ...envelopes, transport: metrics?.() }),
  };
  serve(subject, (server.address() as { port: number }).port);
}

main().catch(fail);
