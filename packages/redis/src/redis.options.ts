import { validateRedisTransportOptions } from './redis-options.validation.js';
import type { RedisTransportOptions } from './redis-transport-options.interface.js';

const DEFAULTS = {
  url: 'redis://localhost:6379',
  prefix: 'nest_sse',
  cleanupInterval: 60,
  historySize: 10_000,
  historyMaxAge: 5 * 60_000,
  publishTimeout: 10_000,
  maxPendingPublishes: 10_000,
  maxReconnectDelay: 2_000,
  connectTimeout: 10_000,
  readBatchSize: 512,
};

/**
 * Entries the Stream keeps at least, whatever historySize says: it is also every node's delivery
 * buffer, and a node that reads a little behind must still find what it has not read.
 */
const MIN_RETAINED = 1000;

/** The options with their defaults, checked, and the values the parts derive from them. */
export type ResolvedRedisOptions = typeof DEFAULTS &
  RedisTransportOptions & {
    /** A node's stats lease, ms. */
    leaseMs: number;
    /** How often a node looks at its counts, ms. */
    statsEvery: number;
    /** Entries each publish script run keeps in the Stream (see MIN_RETAINED). */
    retained: number;
    /** How long a node's recent publishes (the resend guard) are kept, ms. */
    guardTtl: number;
  };

/**
 * Checks the options (see `validateRedisTransportOptions`), then merges the defaults (an undefined
 * field takes its default).
 */
export function resolveRedisOptions(options: RedisTransportOptions): ResolvedRedisOptions {
  validateRedisTransportOptions(options);
  const merged = { ...DEFAULTS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  const leaseMs = Math.round(merged.cleanupInterval * 1000);
  const statsEvery = options.statsInterval ?? Math.min(1000, Math.floor(leaseMs / 3));
  return {
    ...merged,
    leaseMs,
    statsEvery,
    retained: Math.max(merged.historySize, MIN_RETAINED),
    guardTtl: Math.max(60_000, merged.publishTimeout * 6),
  };
}
