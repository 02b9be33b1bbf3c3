import type { Type } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { SseModule } from '@nest-sse/core';
import { RedisTransport, type RedisTransportOptions } from '@nest-sse/redis';
import { startApp, type TestApp } from './app.js';

/**
 * An Express app whose transport runs on a client the test made (a `Cluster`, or a `Redis` behind
 * Sentinel); closing the app also disconnects that client, which the transport leaves open.
 */
export async function startAppOnClient(
  client: Redis | Cluster,
  prefix: string,
  controllers: Type[],
  options: RedisTransportOptions = {},
): Promise<TestApp> {
  const t = await startApp('express', {
    imports: [SseModule.forRoot({ transport: new RedisTransport({ ...options, client, prefix }), drainTimeout: 0 })],
    controllers,
  });
  return {
    ...t,
    close: async () => {
      await t.close();
      client.disconnect();
    },
  };
}
