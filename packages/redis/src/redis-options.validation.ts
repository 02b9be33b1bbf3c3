import { MAX_TIMER_MS, metadataKeyProblem, SseConfigurationError, SseOptionRules as R, validateOptions } from '@nest-sse/core';
import type { RedisTransportOptions } from './redis-transport-options.interface.js';
import { PREFIX } from './redis.keys.js';

const SUBJECT = 'RedisTransport options';

/** Why `url` cannot be used, or undefined. The rule states the form; the hint names the part that is off. */
function urlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'It is not a URL.';
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    return `Its scheme is '${parsed.protocol.replace(/:$/, '')}'; use redis:// (or rediss:// for TLS).`;
  }
  if (!/^\/?(\d+)?$/.test(parsed.pathname)) return `Its path '${parsed.pathname}' is not a database index such as /0.`;
  return undefined;
}

const ms = (min: number) => R.integer({ min, max: MAX_TIMER_MS, unit: 'ms' });

const rules = R.object({
  url: R.string('a redis:// or rediss:// URL, optionally ending in a database index (redis://host:6379/0)', urlProblem),
  client: R.custom(
    'an ioredis Redis or Cluster',
    (v) => v !== null && typeof v === 'object' && typeof (v as { duplicate?: unknown }).duplicate === 'function',
  ),
  redisOptions: R.custom('an object of ioredis options', (v) => v !== null && typeof v === 'object' && !Array.isArray(v)),
  prefix: R.string("1 to 64 letters, digits, '_', '.', ':' or '-'", (v) => (PREFIX.test(v) ? undefined : '')),
  cleanupInterval: R.number({ min: 1, max: 86_400, unit: 'seconds' }),
  statsInterval: ms(1),
  historySize: R.integer({ min: 1, unit: 'events' }),
  historyMaxAge: ms(1),
  publishTimeout: ms(1),
  maxPendingPublishes: R.integer({ min: 1 }),
  maxReconnectDelay: ms(1),
  connectTimeout: ms(1),
  readBatchSize: R.integer({ min: 1, max: 100_000 }),
  routeBy: R.string("a metadata name: 1 to 64 letters, digits, '_', '.', ':' or '-'", (v) =>
    metadataKeyProblem(v) === undefined ? undefined : '',
  ),
} satisfies Record<keyof RedisTransportOptions, unknown>);

/**
 * Checks every option (type, range, unknown keys with the nearest name suggested) and the
 * combinations that cannot work; throws `SseConfigurationError` naming the option.
 */
export function validateRedisTransportOptions(options: RedisTransportOptions): void {
  validateOptions(SUBJECT, options, rules);
  if (options.client !== undefined && options.url !== undefined) {
    throw new SseConfigurationError(
      `${SUBJECT}: url and client are both given; give one (the transport uses client and would ignore url).`,
      {
        option: 'url',
        value: options.url,
        rule: 'not given together with client',
      },
    );
  }
  if (options.client !== undefined && options.redisOptions !== undefined) {
    throw new SseConfigurationError(
      `${SUBJECT}: redisOptions apply to the connections the transport makes from url; with client they would be ignored. Configure your client instead.`,
      { option: 'redisOptions', value: options.redisOptions, rule: 'not given together with client' },
    );
  }
  const lease = (options.cleanupInterval ?? 60) * 1000;
  if (options.statsInterval !== undefined && options.statsInterval >= lease) {
    throw new SseConfigurationError(
      `${SUBJECT}: statsInterval is ${options.statsInterval}; it must be below cleanupInterval (${lease} ms), or a live node's lease would lapse between two renewals.`,
      { option: 'statsInterval', value: options.statsInterval, rule: `an integer below ${lease} (ms)` },
    );
  }
}
