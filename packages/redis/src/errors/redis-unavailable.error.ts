import { SseTransportUnavailableError } from '@nest-sse/core';

/** What kept the transport from connecting, on `RedisUnavailableError.reason`. */
export type RedisConnectFailure = 'refused' | 'unknown-host' | 'auth' | 'database' | 'timeout' | 'closed' | 'other';

/**
 * Redis could not be used. At start-up, `reason` says why (`'refused'`, `'unknown-host'`,
 * `'auth'`, `'database'`, `'timeout'`, `'closed'`, `'other'`) and `cause` holds the underlying
 * error. Later, a broadcast (or a replay) could not be done because Redis was not reachable in
 * time, refused the write (out of memory, a read-only replica) or was failing over: the message
 * says why and whether the event may still be delivered, and the broadcast route answers it with
 * 503 and `Retry-After` (it is an `SseTransportUnavailableError`).
 *
 * @publicApi
 */
export class RedisUnavailableError extends SseTransportUnavailableError {
  readonly reason?: RedisConnectFailure;

  constructor(message: string, options: { retryAfter?: number; cause?: unknown; reason?: RedisConnectFailure } = {}) {
    super(message, options);
    this.name = 'RedisUnavailableError';
    if (options.reason !== undefined) this.reason = options.reason;
  }
}
