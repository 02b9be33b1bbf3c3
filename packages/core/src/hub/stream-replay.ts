import { Inject, Injectable } from '@nestjs/common';
import { streamMatches } from '../connection/connection-registry.js';
import type { SseStream } from '../connection/sse-stream.js';
import { isResumableId } from '../encoding/sse-encoder.js';
import { SseTransportUnavailableError } from '../errors/sse-transport-unavailable.error.js';
import { SseTransport, type SseReplayResult } from '../interfaces/sse-transport.interface.js';
import { EnvelopeFrames, messageOf } from './envelope-frames.js';
import { SseNode } from './sse-node.js';
import { resetEvent, sendAway } from './stream-drain.js';

/** Ids of held live events a resumed stream must not get again. */
export interface SseReplaySkip {
  has(id: string): boolean;
}

/** Resumes a stream that arrived with a `Last-Event-ID`: what it missed, or the reset event. */
@Injectable()
export class StreamReplay {
  constructor(
    private readonly node: SseNode,
    private readonly frames: EnvelopeFrames,
    @Inject(SseTransport) private readonly transport: SseTransport,
  ) {}

  /**
   * Replays what `stream` missed after its `Last-Event-ID`, or sends the reset event; returns
   * what held live events to skip: those replayed, and (when the transport orders its ids) those
   * at or before the replay point, which the client already had from another node.
   *
   * When the transport cannot reach its history for now (`SseTransportUnavailableError`: Redis
   * down, frozen or failing over), the history is not gone: the stream ends with a retry hint of
   * at least `retry` ms (the endpoint's) and the error's `retryAfter`, and the client comes back
   * with the same `Last-Event-ID` rather than being told to start over.
   */
  async replayInto(stream: SseStream, lastEventId: string, limit: number, retry: number): Promise<SseReplaySkip> {
    const { counters } = this.node;
    const replayed = new Set<string>();
    let result: SseReplayResult;
    try {
      result = isResumableId(lastEventId)
        ? await this.transport.replay(lastEventId, limit, stream)
        : { status: 'reset', reason: 'malformed' };
    } catch (err) {
      if (err instanceof SseTransportUnavailableError) {
        sendAway(stream, retry, err, (text) => this.node.logger.warn(text));
        return replayed;
      }
      this.node.error('Replay after a Last-Event-ID failed', err);
      result = { status: 'reset', reason: 'unknown' };
    }
    if (result.status === 'reset') {
      counters.resets++;
      stream.write(resetEvent(result.reason).frame);
      return replayed;
    }
    counters.replays++;
    for (const envelope of result.events) {
      replayed.add(envelope.id);
      if (envelope.target !== undefined || !streamMatches(stream, envelope.endpoint, envelope.filter)) continue;
      stream.write(this.frames.frameOf(envelope), messageOf(envelope));
      counters.replayedEvents++;
    }
    const after = result.after;
    const compare = this.transport.compareIds?.bind(this.transport);
    if (after === undefined || compare === undefined) return replayed;
    return { has: (id) => replayed.has(id) || compare(id, after) <= 0 };
  }
}
