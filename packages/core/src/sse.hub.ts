import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { SseCloseReason, SseStream } from './connection/sse-stream.js';
import { MESSAGE_FIELDS, assertFields, draftOf } from './hub/broadcast-draft.js';
import { ClusterCounts, type SseHubStats } from './hub/cluster-counts.js';
import { EndpointNames } from './hub/endpoint-names.js';
import { HubLifecycle } from './hub/hub-lifecycle.js';
import { LocalFanout } from './hub/local-fanout.js';
import { LocalStreams } from './hub/local-streams.js';
import { PublishReceipts } from './hub/publish-receipts.js';
import { SseNode, type SseCounters } from './hub/sse-node.js';
import { StreamDrain } from './hub/stream-drain.js';
import type { SseModuleOptions } from './interfaces/sse-module-options.interface.js';
import type {
  SseBroadcast,
  SseBroadcastOptions,
  SseEventData,
  SseEventMap,
  SseEventName,
  SseMessage,
  SseTypedBroadcast,
} from './interfaces/sse-message.interface.js';
import { SseTransport, type SseNodeStats } from './interfaces/sse-transport.interface.js';
import { DEFAULT_DRAIN_TIMEOUT, SSE_MODULE_OPTIONS } from './sse.constants.js';

/**
 * The hub: broadcast to every matching connection on every node, send to one connection,
 * read stats. Inject it anywhere in the app.
 *
 * The hub never delivers a broadcast locally on its own: it publishes to the transport, which
 * hands the event back to every node (this one included) exactly once, so every recipient sees
 * the same id in the same order whichever node published.
 *
 * Declare the app's events once to have payloads checked: `constructor(hub: SseHub<AppEvents>)`.
 *
 * @example
 * constructor(private readonly hub: SseHub) {}
 * flash() {
 *   return this.hub.broadcast({ event: 'update', data: 'Breaking news!', filter: { channel: 'news' } });
 * }
 * @publicApi
 */
@Injectable()
export class SseHub<M extends object = SseEventMap>
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  /** This process's node id (random per start). */
  readonly nodeId: string;
  /** Counters since start. */
  readonly counters: SseCounters;
  /** Resolves when the transport is connected and broadcasts can flow. */
  readonly ready: Promise<void>;

  /** @internal Nest builds the hub (its parts are providers of SseModule). */
  constructor(
    @Inject(SSE_MODULE_OPTIONS) private readonly options: SseModuleOptions,
    @Inject(SseTransport) private readonly transport: SseTransport,
    private readonly node: SseNode,
    private readonly local: LocalStreams,
    private readonly fanout: LocalFanout,
    private readonly receipts: PublishReceipts,
    private readonly counts: ClusterCounts,
    private readonly draining: StreamDrain,
    private readonly lifecycle: HubLifecycle,
    private readonly names: EndpointNames,
  ) {
    this.nodeId = node.id;
    this.counters = node.counters;
    this.ready = lifecycle.ready;
  }

  /**
   * Sends one event to every matching connection on every node and resolves with the number
   * of connections it reached on this node (with one node, all of them).
   *
   * @example hub.broadcast({ event: 'update', data: { title: 'Hi' }, filter: { channel: ['news', 'sports'] } })
   */
  async broadcast(message: SseTypedBroadcast<M>): Promise<number> {
    const draft = draftOf(message as SseBroadcast, this.node.id, this.receipts.nextSeq());
    await this.lifecycle.ensureReady();
    draft.endpoint = this.names.resolve(draft.endpoint);
    return this.receipts.publish(draft);
  }

  /**
   * The shorthand: `broadcastEvent('update', data, { filter, id })`.
   */
  broadcastEvent<K extends SseEventName<M>>(
    event: K,
    data: SseEventData<M, K>,
    options: SseBroadcastOptions = {},
  ): Promise<number> {
    return this.broadcast({ event, data, ...options } as unknown as SseTypedBroadcast<M>);
  }

  /**
   * Sends one event to the connection with this id, on whichever node holds it. Resolves true
   * when it was written here, or accepted for the other nodes of a distributed transport; false
   * when no such connection is open (as far as this node can tell).
   */
  async send(connectionId: string, message: SseMessage<SseEventName<M>, SseEventData<M, SseEventName<M>>>): Promise<boolean> {
    if (message !== null && typeof message === 'object') assertFields(message, MESSAGE_FIELDS, 'a message');
    const local = this.local.registry.get(connectionId);
    if (local !== undefined) return local.send(message);
    if (this.transport.backend === 'memory') return false;
    const draft = draftOf({ ...message, filter: undefined, endpoint: undefined }, this.node.id, this.receipts.nextSeq());
    draft.target = connectionId;
    await this.lifecycle.ensureReady();
    await this.transport.publish(draft);
    return true;
  }

  /** An open stream of this node by id. */
  getStream(id: string): SseStream | undefined {
    return this.local.registry.get(id);
  }

  /** The open streams of this node, of one endpoint or all. */
  *streams(endpoint?: string): IterableIterator<SseStream> {
    for (const stream of this.local.registry.values()) {
      if (endpoint === undefined || stream.endpoint === endpoint) yield stream;
    }
  }

  /** Connection counts of the whole cluster (this node alone on the memory transport). */
  stats(): Promise<SseHubStats> {
    return this.counts.cluster();
  }

  /** This node's counts. */
  localStats(): SseNodeStats {
    return this.counts.local();
  }

  /** Calls `listener` whenever a stream of this node closes. Returns a function that removes it. */
  onStreamClose(listener: (stream: SseStream, reason: SseCloseReason) => void): () => void {
    return this.local.onClose(listener);
  }

  /** True once shutdown began: new streams are told to come back later. */
  get isDraining(): boolean {
    return this.lifecycle.isDraining;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.lifecycle.start({
      nodeId: this.node.id,
      deliver: this.fanout.deliver,
      localStats: () => this.counts.local(),
      passed: (draft) => this.receipts.settle(draft, 0),
      lost: this.fanout.lost,
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.lifecycle.beginDrain();
    await this.draining.drain(this.options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT);
  }

  async onApplicationShutdown(): Promise<void> {
    this.lifecycle.refuse();
    this.local.endAll();
    this.receipts.cancelAll();
    await this.lifecycle.closeTransport();
  }
}
