import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { RedisTransport } from '@nest-sse/redis';
// The same app as the basic sample; only the transport differs.
import { AppModule } from '../../01-basic/dist/app.module.js';

/** Host and port of a Redis URL, without the password it may hold. */
function where(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'the REDIS_URL given';
  }
}

async function bootstrap(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  const url = process.env.REDIS_URL || 'redis://localhost:6379';
  // `/channels` routed by channel: a node reads only the channels its own browsers are on
  const routeBy = process.env.SSE_ROUTE_BY ?? 'channel';
  const transport = new RedisTransport({
    url,
    prefix: process.env.SSE_REDIS_PREFIX || 'nest_sse_sample',
    routeBy: routeBy === '' ? undefined : routeBy,
  });
  const app = await NestFactory.create(AppModule.register(transport));
  app.enableShutdownHooks();
  await app.listen(port);
  // under `npm run start:cluster` every worker listens on the same port
  const worker = process.env.SSE_WORKER_SLOT ? `, worker ${process.env.SSE_WORKER_SLOT}, pid ${process.pid}` : '';
  console.log(`nest-sse sample on http://localhost:${port} (Redis at ${where(url)}${worker})`);
}

bootstrap().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
