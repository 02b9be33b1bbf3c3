/**
 * A broadcast (or a replay) could not be done because Redis was not reachable in time. The
 * message says whether the event may still be delivered.
 *
 * @publicApi
 */
export class RedisUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailableError';
  }
}
