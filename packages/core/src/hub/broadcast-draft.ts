import { normalizeFilter } from '../connection/metadata-rules.js';
import { assertSseField, serializeSseData } from '../encoding/sse-encoder.js';
import { SseEventError } from '../errors/sse-event.error.js';
import type { SseBroadcast } from '../interfaces/sse-message.interface.js';
import type { SseEnvelopeDraft } from '../interfaces/sse-transport.interface.js';
import { describeValue, nearest } from '../validation/options-schema.js';

const FIELDS: readonly string[] = ['event', 'data', 'id', 'filter', 'endpoint'];
/** The fields of a message to one stream (`hub.send`). */
export const MESSAGE_FIELDS: readonly string[] = ['event', 'data', 'id'];

/**
 * Throws `SseEventError` for a key `message` should not have, naming the nearest field: a
 * misspelt `filter` or `endpoint` would otherwise widen who gets the event, without a word.
 */
export function assertFields(message: object, fields: readonly string[], what: string): void {
  for (const key in message) {
    if (fields.includes(key)) continue;
    const guess = nearest(key, fields);
    throw new SseEventError(
      `'${key}' is not a field of ${what}${guess ? `; did you mean '${guess}'?` : '.'} Its fields are ${fields.join(', ')}.`,
    );
  }
}

/** Checks a broadcast and makes the envelope to publish; throws `SseEventError` on what cannot be sent. */
export function draftOf(message: SseBroadcast, origin: string, seq: number): SseEnvelopeDraft {
  if (message === null || typeof message !== 'object') throw new SseEventError('a broadcast must be an object with data');
  assertFields(message, FIELDS, 'a broadcast');
  if (message.endpoint !== undefined && typeof message.endpoint !== 'string') {
    throw new SseEventError(`a broadcast's endpoint must be a string such as '/events' (got ${describeValue(message.endpoint)})`);
  }
  const event = message.event === undefined ? undefined : assertSseField('event', message.event);
  const eventId = message.id === undefined ? undefined : assertSseField('id', message.id);
  return {
    eventId,
    event,
    data: serializeSseData(message.data),
    endpoint: message.endpoint,
    filter: message.filter === undefined ? undefined : normalizeFilter(message.filter),
    origin,
    seq,
    time: Date.now(),
  };
}
