import { Injectable } from '@nestjs/common';
import type { SseEnvelope } from '../interfaces/sse-transport.interface.js';
import { EnvelopeFrames, messageOf } from './envelope-frames.js';
import { LocalStreams } from './local-streams.js';
import { PublishReceipts } from './publish-receipts.js';
import { SseNode } from './sse-node.js';

/**
 * Hands each envelope the transport delivers to this node's matching streams: encode once, look
 * the recipients up through the index, write, count; then settles the publisher's receipt.
 */
@Injectable()
export class LocalFanout {
  constructor(
    private readonly node: SseNode,
    private readonly streams: LocalStreams,
    private readonly frames: EnvelopeFrames,
    private readonly receipts: PublishReceipts,
  ) {}

  /** The transport's delivery callback. */
  readonly deliver = (envelope: SseEnvelope): void => {
    let reached = 0;
    try {
      const frame = this.frames.frameOf(envelope);
      const message = messageOf(envelope);
      const registry = this.streams.registry;
      if (envelope.target !== undefined) {
        const stream = registry.get(envelope.target);
        if (stream !== undefined) {
          stream.deliver(frame, envelope.id, message);
          reached = 1;
        }
      } else {
        reached = registry.forEachMatch(envelope.endpoint, envelope.filter, (stream) =>
          stream.deliver(frame, envelope.id, message),
        );
      }
      this.node.counters.delivered += reached;
    } catch (err) {
      this.node.logger.error(`Dropped event ${envelope.id}: ${(err as Error).message}`);
    }
    this.receipts.settle(envelope, reached);
  };
}
