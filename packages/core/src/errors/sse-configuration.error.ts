/**
 * Thrown at start-up when the module or an endpoint is configured in a way that cannot work;
 * the message says what to change.
 *
 * @publicApi
 */
export class SseConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SseConfigurationError';
  }
}
