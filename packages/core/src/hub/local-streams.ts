import { channel } from 'node:diagnostics_channel';
import { Inject, Injectable } from '@nestjs/common';
import { ConnectionRegistry } from '../connection/connection-registry.js';
import { HeartbeatScheduler } from '../connection/heartbeat.scheduler.js';
import type { SseCloseReason, SseStream, SseStreamHost } from '../connection/sse-stream.js';
import { SseTransport } from '../interfaces/sse-transport.interface.js';
import { SSE_STREAM_CLOSE_CHANNEL, SSE_STREAM_OPEN_CHANNEL } from '../sse.constants.js';
import { SseNode } from './sse-node.js';
import { WriteScheduler } from './write-scheduler.js';

/** What `nest-sse:stream:open` publishes on `node:diagnostics_channel`. */
export interface SseStreamOpenMessage {
  stream: SseStream;
  /** Where the stream's bytes go: the connection's socket, or the response object. */
  writePath: 'socket' | 'response';
}

/** What `nest-sse:stream:close` publishes on `node:diagnostics_channel`. */
export interface SseStreamCloseMessage {
  stream: SseStream;
  reason: SseCloseReason;
}

const openChannel = channel(SSE_STREAM_OPEN_CHANNEL);
const closeChannel = channel(SSE_STREAM_CLOSE_CHANNEL);

/**
 * The open streams of this node: registered as they open (indexed, given heartbeats, counted,
 * announced on `diagnostics_channel`) and let go of as they close, whichever way.
 */
@Injectable()
export class LocalStreams {
  readonly registry = new ConnectionRegistry();
  readonly heartbeats = new HeartbeatScheduler();
  /** What every stream needs from this node; an endpoint adds its own `checkMetadata`. */
  readonly host: Omit<SseStreamHost, 'checkMetadata'>;
  private readonly closeListeners = new Set<(stream: SseStream, reason: SseCloseReason) => void>();
  /** The transport's route keys, when it follows what streams hold. */
  private readonly routeKeys: readonly string[] | undefined;

  constructor(
    private readonly node: SseNode,
    scheduler: WriteScheduler,
    @Inject(SseTransport) private readonly transport: SseTransport,
  ) {
    const { counters } = node;
    const registry = this.registry;
    // A transport that routes by metadata follows the values this node's streams hold.
    const { routeKeys, hold } = transport;
    if (routeKeys !== undefined && routeKeys.length > 0 && transport.follow !== undefined) this.routeKeys = routeKeys;
    if (routeKeys !== undefined && routeKeys.length > 0 && hold !== undefined) {
      registry.watch(routeKeys, (key, value, held) => {
        try {
          hold.call(transport, key, value, held);
        } catch (err) {
          node.error(`The transport failed to follow ${key}=${value}`, err);
        }
      });
    }
    this.host = {
      schedule: scheduler.schedule,
      reindex: (stream, key, before) => registry.reindex(stream, key, before),
      closed: (stream, reason) => this.closed(stream, reason),
      dropped: (_stream, count) => {
        counters.dropped += count;
      },
      report: (stream, error, where) => node.error(`Error in ${where} of stream ${stream.id} (${stream.endpoint})`, error),
      following: (stream) => this.following((key) => stream.getMetadataValues(key)),
    };
  }

  /**
   * Resolves once the transport delivers the events of every routed value `valuesOf` names (a
   * stream's metadata, before it opens); undefined when there is nothing to wait for. Rejects
   * with an `SseTransportUnavailableError` when the transport cannot follow them for now.
   */
  following(valuesOf: (key: string) => readonly string[] | undefined): Promise<unknown> | undefined {
    const keys = this.routeKeys;
    if (keys === undefined) return undefined;
    let waits: Array<Promise<void>> | undefined;
    for (const key of keys) {
      const values = valuesOf(key);
      if (values !== undefined && values.length > 0) (waits ??= []).push(this.transport.follow!(key, values));
    }
    return waits === undefined ? undefined : waits.length === 1 ? waits[0] : Promise.all(waits);
  }

  /** Registers an opening stream: it receives live events (held until it opens). */
  register(stream: SseStream, heartbeatMs: number, writePath: 'socket' | 'response'): void {
    // the connect hook may give the stream routed values: the client sees nothing before they are followed
    if (this.routeKeys !== undefined) stream.holdUntilOpen();
    this.registry.add(stream);
    this.heartbeats.add(stream, heartbeatMs);
    this.node.counters.opened++;
    if (openChannel.hasSubscribers) openChannel.publish({ stream, writePath } satisfies SseStreamOpenMessage);
  }

  /** Calls `listener` whenever a stream closes; returns a function that removes it. */
  onClose(listener: (stream: SseStream, reason: SseCloseReason) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Ends every stream (at shutdown) and stops the heartbeat timers. */
  endAll(): void {
    for (const stream of [...this.registry.values()]) stream.end('shutdown');
    this.heartbeats.stop();
  }

  private closed(stream: SseStream, reason: SseCloseReason): void {
    this.registry.remove(stream);
    this.heartbeats.remove(stream);
    const { counters } = this.node;
    counters.closed++;
    if (reason === 'slow') counters.slowDisconnects++;
    if (closeChannel.hasSubscribers) closeChannel.publish({ stream, reason } satisfies SseStreamCloseMessage);
    for (const listener of this.closeListeners) {
      try {
        listener(stream, reason);
      } catch (err) {
        this.node.error('A stream close listener threw', err);
      }
    }
  }
}
