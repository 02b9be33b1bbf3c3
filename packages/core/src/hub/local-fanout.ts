import { Injectable } from '@nestjs/common';
import type { SseStream } from '../connection/sse-stream.js';
import type { SseEnvelope } from '../interfaces/sse-transport.interface.js';
import { EnvelopeFrames, messageOf, type SseEnvelopeMessage } from './envelope-frames.js';
import { LocalStreams } from './local-streams.js';
import { PublishReceipts } from './publish-receipts.js';
import { SseNode } from './sse-node.js';
import { resetEvent } from './stream-drain.js';

/** One id of a routed envelope, with its frame, shared by the streams holding the same values. */
interface RoutedFrame {
  frame: Buffer;
  id: string;
  message: SseEnvelopeMessage;
}

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
      reached = envelope.routed === undefined ? this.deliverPlain(envelope) : this.deliverRouted(envelope);
      this.node.counters.delivered += reached;
    } catch (err) {
      this.node.logger.error(`Dropped event ${envelope.id}: ${(err as Error).message}`);
    }
    this.receipts.settle(envelope, reached);
  };

  /**
   * The transport's word that events of a routed value were lost before this node delivered
   * them: each stream holding the value gets `sse.reset` in line with its live events (held
   * behind a replay like them), so that its client reloads its state.
   */
  readonly lost = (key: string, value: string): void => {
    const { frame, message } = resetEvent('lost');
    const told = this.streams.registry.forEachMatch(undefined, { [key]: [value] }, (stream) =>
      stream.deliver(frame, undefined, message),
    );
    this.node.counters.resets += told;
  };

  private deliverPlain(envelope: SseEnvelope): number {
    const frame = this.frames.frameOf(envelope);
    const message = messageOf(envelope);
    const registry = this.streams.registry;
    if (envelope.target === undefined) {
      return registry.forEachMatch(envelope.endpoint, envelope.filter, (stream) => stream.deliver(frame, envelope.id, message));
    }
    const stream = registry.get(envelope.target);
    if (stream === undefined) return 0;
    stream.deliver(frame, envelope.id, message);
    return 1;
  }

  /**
   * A routed envelope: streams holding the same routed values share one id and one frame (the
   * event and data encoded once for all of them); streams that take it from another of the
   * Streams they read are skipped.
   */
  private deliverRouted(envelope: SseEnvelope): number {
    const routed = envelope.routed!;
    const groups = new Map<string, RoutedFrame | null>();
    let reached = 0;
    const visit = (stream: SseStream): void => {
      const values = stream.getMetadataValues(routed.key);
      const group = values.length === 1 ? values[0] : `${values.length}\n${values.join('\n')}`;
      let routedFrame = groups.get(group);
      if (routedFrame === undefined) {
        const id = routed.idOf(values);
        routedFrame =
          id === undefined
            ? null
            : { frame: this.frames.frameWithId(envelope, id), id, message: { id, event: envelope.event, data: envelope.data } };
        groups.set(group, routedFrame);
      }
      if (routedFrame === null) return;
      stream.deliver(routedFrame.frame, routedFrame.id, routedFrame.message);
      reached++;
    };
    if (envelope.target === undefined) {
      this.streams.registry.forEachMatch(envelope.endpoint, envelope.filter, visit);
    } else {
      const stream = this.streams.registry.get(envelope.target);
      if (stream !== undefined) visit(stream);
    }
    return reached;
  }
}
