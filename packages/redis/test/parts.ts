import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { SseEnvelopeDraft } from '@nest-sse/core';
import { RedisConnections } from '../src/redis.connections.js';
import { RedisKeys } from '../src/redis.keys.js';
import { resolveRedisOptions, type ResolvedRedisOptions } from '../src/redis.options.js';
import type { RedisTransportOptions } from '../src/redis-transport-options.interface.js';
import { RedisServer } from '../../../test/utils/redis-server.js';

const opened: RedisConnections[] = [];

/**
 * The shared pieces every part of the transport is built on, opened on a real server: at `url`,
 * or (url undefined) on the `client` in `options`.
 */
export async function openParts(
  url: string | undefined,
  prefix: string,
  options: RedisTransportOptions = {},
  onReady: () => void = () => undefined,
) {
  const resolved: ResolvedRedisOptions = resolveRedisOptions({ url, prefix, ...options });
  const connections = new RedisConnections(resolved, () => onReady());
  opened.push(connections);
  await connections.open();
  return { options: resolved, connections, keys: new RedisKeys(prefix) };
}

/** Closes every connection `openParts` made (after each test, whatever the test left open). */
export async function closeParts(): Promise<void> {
  await Promise.all(opened.splice(0).map((connections) => connections.close()));
}

let seq = 0;
export function draft(data: string, extra: Partial<SseEnvelopeDraft> = {}): SseEnvelopeDraft {
  return { data, origin: 'test', seq: ++seq, time: Date.now(), ...extra };
}

/** Collects what the parts log. */
export class LogRecorder implements LoggerService {
  lines: string[] = [];
  log(message: unknown) {
    this.lines.push(`log ${String(message)}`);
  }
  warn(message: unknown) {
    this.lines.push(`warn ${String(message)}`);
  }
  error(message: unknown) {
    this.lines.push(`error ${String(message)}`);
  }
  /** Routes Nest's Logger here until `restore`. */
  install(): this {
    Logger.overrideLogger(this);
    return this;
  }
  restore(): void {
    Logger.overrideLogger(false);
  }
}

/**
 * A real redis-server for the tests of one file (started before them, stopped after), a plain
 * client on it, and the transport's log lines; what `openParts` opened is closed after each test.
 */
export function useRedisServer(): { readonly server: RedisServer; readonly admin: Redis; readonly logs: LogRecorder } {
  const env = { logs: new LogRecorder() } as { server: RedisServer; admin: Redis; logs: LogRecorder };
  beforeAll(async () => {
    env.server = await RedisServer.start();
    env.admin = new Redis(env.server.url);
    env.logs.install();
  });
  afterEach(closeParts);
  afterAll(async () => {
    env.logs.restore();
    env.admin?.disconnect();
    await env.server?.stop();
  });
  return env;
}
