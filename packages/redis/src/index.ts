export * from './errors/index.js';
export * from './redis-transport-options.interface.js';
export { RedisTransport } from './redis.transport.js';
export type { RedisConnectFailure } from './errors/redis-unavailable.error.js';
