import type { RedisConnectFailure } from '../redis-connect-errors.js';

/**
 * Redis could not be used: at start-up, `reason` says why (`'refused'`, `'unknown-host'`,
 * `'auth'`, `'database'`, `'timeout'`, `'closed'`, `'other'`) and `cause` holds the underlying
 * error; later, a broadcast (or a replay) could not be done because Redis was not reachable in
 * time, and the message says whether the event may still be delivered.
 *
 * @publicApi
 */
export class RedisUnavailableError extends Error {
  readonly reason?: RedisConnectFailure;

  constructor(message: string, options?: ErrorOptions & { reason?: RedisConnectFailure }) {
    super(message, options);
    this.name = 'RedisUnavailableError';
    if (options?.reason !== undefined) this.reason = options.reason;
  }
}
