import { HttpException, HttpStatus } from '@nestjs/common';

/**
 * A transport could not take a broadcast (or a replay) for now: its backend is unreachable,
 * refuses writes, or is failing over. The message says why and whether the event may still be
 * delivered. The broadcast route answers it with 503 and a `Retry-After` of `retryAfter`
 * seconds; open streams are not affected. Transports throw a subclass of this.
 *
 * It is an `HttpException` of status 503: a route of the app that calls `hub.broadcast` and
 * lets the error go is answered `503 Service Unavailable` with the message, by Nest's own
 * exception handling, instead of a bare 500.
 *
 * @example
 * try {
 *   await hub.broadcast({ event: 'tick', data: Date.now() });
 * } catch (err) {
 *   if (err instanceof SseTransportUnavailableError) logger.warn(`tick skipped: ${err.message}`);
 *   else throw err;
 * }
 * @publicApi
 */
export class SseTransportUnavailableError extends HttpException {
  /** Seconds after which trying again may succeed (the `Retry-After` of the 503). */
  readonly retryAfter: number;

  constructor(message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(
      { statusCode: HttpStatus.SERVICE_UNAVAILABLE, message, error: 'Service Unavailable' },
      HttpStatus.SERVICE_UNAVAILABLE,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'SseTransportUnavailableError';
    this.retryAfter = Math.max(1, Math.ceil(options.retryAfter ?? 1));
  }
}
