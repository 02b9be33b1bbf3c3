import { SseTransportUnavailableError } from '@nest-sse/core';

/**
 * A broadcast (or a replay) could not be done because Redis was not reachable in time, refused
 * the write (out of memory, a read-only replica) or was failing over. The message says why and
 * whether the event may still be delivered; the broadcast route answers it with 503 and
 * `Retry-After` (it is an `SseTransportUnavailableError`).
 *
 * @publicApi
 */
export class RedisUnavailableError extends SseTransportUnavailableError {
  constructor(message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'RedisUnavailableError';
  }
}
