import { normalizeFilter } from '../connection/metadata-rules.js';
import { assertSseField, serializeSseData } from '../encoding/sse-encoder.js';
import { SseEventError } from '../errors/sse-event.error.js';
import type { SseBroadcast } from '../interfaces/sse-message.interface.js';
import type { SseEnvelopeDraft } from '../interfaces/sse-transport.interface.js';

/** Checks a broadcast and makes the envelope to publish; throws `SseEventError` on what cannot be sent. */
export function draftOf(message: SseBroadcast, origin: string, seq: number): SseEnvelopeDraft {
  if (message === null || typeof message !== 'object') throw new SseEventError('a broadcast must be an object with data');
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
