import { Injectable } from '@nestjs/common';
import { assertSseField, encodeSseFrame, isResumableId } from '../encoding/sse-encoder.js';
import type { SseEnvelope } from '../interfaces/sse-transport.interface.js';

/** What `messages$` subscribers see for an envelope: the publisher's id when it gave one. */
export interface SseEnvelopeMessage {
  id: string;
  event: string | undefined;
  data: string;
}

/** The message of an envelope, as streams report it to `messages$`. */
export function messageOf(envelope: SseEnvelope): SseEnvelopeMessage {
  return { id: envelope.eventId ?? envelope.id, event: envelope.event, data: envelope.data };
}

/**
 * Each envelope's frame, encoded once: live delivery fills it, and replays of the same envelope
 * (the memory ring keeps it; the Redis transport shares one read among clients resuming from the
 * same id) write the same bytes instead of encoding again per connection.
 */
@Injectable()
export class EnvelopeFrames {
  private readonly frames = new WeakMap<SseEnvelope, Buffer>();
  private readonly bodies = new WeakMap<SseEnvelope, Buffer>();

  /**
   * The bytes of one envelope, encoded once. Fields are checked again here because an envelope
   * may come from the wire (another node, or junk on a shared Redis).
   */
  frameOf(envelope: SseEnvelope): Buffer {
    let frame = this.frames.get(envelope);
    if (frame === undefined) {
      if (envelope.event !== undefined) assertSseField('event', envelope.event);
      if (envelope.eventId !== undefined) assertSseField('id', envelope.eventId);
      frame = encodeSseFrame(messageOf(envelope));
      this.frames.set(envelope, frame);
    }
    return frame;
  }

  /**
   * The bytes of one envelope under the given id (a routed envelope's streams get different ids):
   * the event and data are encoded once per envelope, the id line per call.
   */
  frameWithId(envelope: SseEnvelope, id: string): Buffer {
    let body = this.bodies.get(envelope);
    if (body === undefined) {
      if (envelope.event !== undefined) assertSseField('event', envelope.event);
      body = encodeSseFrame({ event: envelope.event, data: envelope.data });
      this.bodies.set(envelope, body);
    }
    // one test covers what the field rules ask of an id (printable ASCII, 1 to 128, so no CR, LF or NUL)
    if (!isResumableId(id)) assertSseField('id', id);
    const line = `id: ${id}\n`;
    const frame = Buffer.allocUnsafe(line.length + body.length);
    frame.write(line, 0, 'latin1');
    body.copy(frame, line.length);
    return frame;
  }
}
