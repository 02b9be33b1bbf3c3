/**
 * Thrown when an event cannot be written as given: an event name or id with CR, LF or NUL
 * (which would inject fields into the stream), one that is too long, or data that cannot be
 * serialized. The broadcast route answers it with 400 and this message.
 *
 * @publicApi
 */
export class SseEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SseEventError';
  }
}
