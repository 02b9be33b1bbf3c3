import type { SseMessage, SseStreamMessage } from '../interfaces/sse-message.interface.js';
import { assertSseField, encodeSseFrame, serializeSseData } from './sse-encoder.js';

/**
 * One event's frame and what `messages$` reports of it; throws `SseEventError` for an event name
 * or id that cannot be written safely. What `send` writes; encoded once, the same bytes serve
 * every stream (an endpoint's welcome event).
 */
export function encodeSseMessage(message: SseMessage): { frame: Buffer; written: SseStreamMessage } {
  const id = message.id === undefined ? undefined : assertSseField('id', message.id);
  const event = message.event === undefined ? undefined : assertSseField('event', message.event);
  const data = serializeSseData(message.data);
  return { frame: encodeSseFrame({ id, event, data }), written: { id, event, data } };
}
