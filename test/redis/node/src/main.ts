// One node of the multi-node tests: the transport under test on REDIS_URL, with routes to drive it.
import 'reflect-metadata';
import { Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SseModule } from '@nest-sse/core';
import { RedisTransport } from '@nest-sse/redis';
import {
  APP_CLOSER,
  AssignedController,
  ChannelsController,
  ControlController,
  EventsController,
  LimitedController,
} from './node.controllers.js';

const env = process.env;
const number = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : Number(env[name]));

let app: INestApplication | undefined;

@Module({})
class NodeModule {
  static register(): DynamicModule {
    const transport = new RedisTransport({
      url: env.REDIS_URL,
      prefix: env.SSE_PREFIX,
      cleanupInterval: number('SSE_CLEANUP_INTERVAL'),
      statsInterval: number('SSE_STATS_INTERVAL'),
      historySize: number('SSE_HISTORY_SIZE'),
      historyMaxAge: number('SSE_HISTORY_MAX_AGE'),
      publishTimeout: number('SSE_PUBLISH_TIMEOUT'),
      maxReconnectDelay: number('SSE_MAX_RECONNECT_DELAY'),
      routeBy: env.SSE_ROUTE_BY || undefined,
    });
    return {
      module: NodeModule,
      imports: [SseModule.forRoot({ transport, drainTimeout: 0 })],
      controllers: [EventsController, ChannelsController, AssignedController, ControlController, LimitedController],
      providers: [{ provide: APP_CLOSER, useValue: { close: () => void app?.close() } }],
    };
  }
}

async function main(): Promise<void> {
  // The tests start this process with stdin as a pipe: when the test process goes away, so do we.
  if (env.EXIT_WITH_PARENT === '1') {
    process.stdin.on('end', () => process.exit(1));
    process.stdin.resume();
    (process.stdin as unknown as { unref?: () => void }).unref?.();
  }
  app = await NestFactory.create(NodeModule.register(), { logger: ['log', 'warn', 'error'] });
  await app.listen(Number(env.PORT ?? 0), '127.0.0.1');
  const address = app.getHttpServer().address();
  console.log(`READY ${typeof address === 'object' && address ? address.port : env.PORT}`);
}

main().catch((err) => {
  console.error(`FAILED ${(err as Error).stack ?? err}`);
  process.exit(1);
});
