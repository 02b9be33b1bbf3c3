import { randomUUID } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { ConnectionRegistry, streamMatches, type NormalizedFilter } from './connection/connection-registry.js';
import { metadataKeyProblem } from './connection/metadata-key.js';
import { HeartbeatScheduler } from './connection/heartbeat.scheduler.js';
import { type SseCloseReason, SseStream, type SseStreamHost } from './connection/sse-stream.js';
import { assertSseField, encodeSseFrame, encodeSseRetry, isResumableId, serializeSseData } from './encoding/sse-encoder.js';
import { SseEventError } from './errors/sse-event.error.js';
import { SseLifecycleError } from './errors/sse-lifecycle.error.js';
import { hubClosed, hubNotReady, hubStartFailed } from './sse.messages.js';
import type { SseEndpointDefinition } from './decorators/sse-endpoint.decorator.js';
import { SseEndpointRuntime } from './http/sse-endpoint.runtime.js';
import type { SseModuleOptions } from './interfaces/sse-module-options.interface.js';
import type {
  SseBroadcast,
  SseBroadcastOptions,
  SseEventData,
  SseEventMap,
  SseEventName,
  SseFilter,
  SseMessage,
  SseTypedBroadcast,
} from './interfaces/sse-message.interface.js';
import {
  type SseClusterStats,
  type SseEnvelope,
  type SseEnvelopeDraft,
  type SseNodeStats,
  SseTransport,
} from './interfaces/sse-transport.interface.js';
import {
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_READY_TIMEOUT,
  DEFAULT_RETRY,
  SSE_MODULE_OPTIONS,
  SSE_RESET_EVENT,
  SSE_STREAM_CLOSE_CHANNEL,
  SSE_STREAM_OPEN_CHANNEL,
} from './sse.constants.js';

/** Counters since start, per node. */
export interface SseCounters {
  /** Broadcasts this node published. */
  published: number;
  /** Events this node wrote to its streams (one per recipient). */
  delivered: number;
  /** Streams ended because the client fell behind. */
  slowDisconnects: number;
  /** Events dropped for slow clients under `drop-oldest`. */
  dropped: number;
  /** Connections that resumed with `Last-Event-ID`, and events replayed to them. */
  replays: number;
  replayedEvents: number;
  /** Connections told to reset (`sse.reset`) because their id could not be resumed. */
  resets: number;
  /** Streams opened and closed since start. */
  opened: number;
  closed: number;
}

/** Answer of `SseHub.stats()`. */
export interface SseHubStats {
  connected_clients: number;
  timestamp: string;
  backend: string;
  endpoints: Record<string, number>;
  nodes: Array<{ node: string; connected_clients: number; endpoints: Record<string, number> }>;
}

interface Pending {
  resolve: (reached: number) => void;
  timer?: NodeJS.Timeout;
}

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

/** How long a publisher waits for its own node to deliver an accepted event before giving up counting. */
const ECHO_TIMEOUT = 10_000;
/** How old the other nodes' counts may be when a connection limit is checked. */
const OTHERS_TTL = 1000;

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
  readonly nodeId = randomUUID();
  /** @internal */ readonly registry = new ConnectionRegistry();
  /** @internal */ readonly heartbeats = new HeartbeatScheduler();
  /** @internal */ readonly logger = new Logger('SseHub');
  /** Counters since start. */
  readonly counters: SseCounters = {
    published: 0,
    delivered: 0,
    slowDisconnects: 0,
    dropped: 0,
    replays: 0,
    replayedEvents: 0,
    resets: 0,
    opened: 0,
    closed: 0,
  };

  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private dirty: SseStream[] = [];
  private flushArmed = false;
  private readyResolve!: () => void;
  private readyReject!: (err: unknown) => void;
  private started = false;
  /** The transport started: broadcasts flow. */
  private isReady = false;
  /** Why the transport failed to start, once it did. */
  private startError: unknown;
  /** `app.close()` ran: broadcasts are refused. */
  private closed = false;
  private draining = false;
  private readonly endpoints = new Map<SseEndpointDefinition, SseEndpointRuntime>();
  /** Endpoint names `broadcast({ endpoint })` takes (decorator paths and full stream paths) → the decorator path. */
  private readonly endpointNames = new Map<string, string>();
  /**
   * Each envelope's frame, encoded once: live delivery fills it, and replays of the same envelope
   * (the memory ring keeps it; the Redis transport shares one read among clients resuming from the
   * same id) write the same bytes instead of encoding again per connection.
   */
  private readonly frames = new WeakMap<SseEnvelope, Buffer>();
  private othersCache: { at: number; promise: Promise<SseNodeStats[]> } | undefined;
  /** @internal metadata keys whose per-value counts this node reports (per-key connection limits). */
  readonly countedKeys = new Set<string>();
  private readonly closeListeners = new Set<(stream: SseStream, reason: SseCloseReason) => void>();

  /** Resolves when the transport is connected and broadcasts can flow. */
  readonly ready: Promise<void> = new Promise((resolve, reject) => {
    this.readyResolve = resolve;
    this.readyReject = reject;
  });

  /** @internal */ readonly streamHost: SseStreamHost;

  constructor(
    @Inject(SSE_MODULE_OPTIONS) readonly options: SseModuleOptions,
    @Inject(SseTransport) readonly transport: SseTransport,
  ) {
    this.ready.catch(() => undefined);
    if (transport.routeKeys !== undefined && transport.routeKeys.length > 0 && transport.hold !== undefined) {
      this.registry.watch(transport.routeKeys, (key, value, held) => {
        try {
          transport.hold!(key, value, held);
        } catch (err) {
          this.logger.error(`The transport failed to follow ${key}=${value}: ${(err as Error).message}`, (err as Error).stack);
        }
      });
    }
    const hub = this;
    this.streamHost = {
      schedule(stream) {
        hub.dirty.push(stream);
        if (!hub.flushArmed) {
          hub.flushArmed = true;
          setImmediate(hub.flushDirty);
        }
      },
      reindex(stream, key, before) {
        hub.registry.reindex(stream, key, before);
      },
      checkMetadata() {
        // replaced per endpoint by the endpoint runtime
      },
      closed(stream, reason) {
        hub.onStreamClosed(stream, reason);
      },
      dropped(_stream, count) {
        hub.counters.dropped += count;
      },
      report(stream, error, where) {
        hub.logger.error(
          `Error in ${where} of stream ${stream.id} (${stream.endpoint}): ${(error as Error)?.message ?? error}`,
          (error as Error)?.stack,
        );
      },
    };
  }

  /**
   * Sends one event to every matching connection on every node and resolves with the number
   * of connections it reached on this node (with one node, all of them).
   *
   * @example hub.broadcast({ event: 'update', data: { title: 'Hi' }, filter: { channel: ['news', 'sports'] } })
   */
  async broadcast(message: SseTypedBroadcast<M>): Promise<number> {
    const draft = this.draft(message as SseBroadcast);
    await this.ensureReady();
    draft.endpoint = this.endpointOf(draft.endpoint);
    return this.publish(draft);
  }

  /**
   * The shorthand: `broadcastEvent('update', data, { filter, id })`.
   */
  broadcastEvent<K extends SseEventName<M>>(event: K, data: SseEventData<M, K>, options: SseBroadcastOptions = {}): Promise<number> {
    return this.broadcast({ event, data, ...options } as unknown as SseTypedBroadcast<M>);
  }

  /**
   * Sends one event to the connection with this id, on whichever node holds it. Resolves true
   * when it was written here, or accepted for the other nodes of a distributed transport; false
   * when no such connection is open (as far as this node can tell).
   */
  async send(connectionId: string, message: SseMessage<SseEventName<M>, SseEventData<M, SseEventName<M>>>): Promise<boolean> {
    const local = this.registry.get(connectionId);
    if (local !== undefined) return local.send(message);
    if (this.transport.backend === 'memory') return false;
    const draft = this.draft({ ...message, filter: undefined, endpoint: undefined });
    draft.target = connectionId;
    await this.ensureReady();
    await this.transport.publish(draft);
    return true;
  }

  /** An open stream of this node by id. */
  getStream(id: string): SseStream | undefined {
    return this.registry.get(id);
  }

  /** The open streams of this node, of one endpoint or all. */
  *streams(endpoint?: string): IterableIterator<SseStream> {
    for (const stream of this.registry.values()) {
      if (endpoint === undefined || stream.endpoint === endpoint) yield stream;
    }
  }

  /** Connection counts of the whole cluster (this node alone on the memory transport). */
  async stats(): Promise<SseHubStats> {
    const cluster: SseClusterStats = await this.transport.clusterStats();
    const endpoints: Record<string, number> = {};
    let total = 0;
    const nodes = cluster.nodes.map((node) => {
      total += node.connected;
      for (const [endpoint, count] of Object.entries(node.endpoints)) endpoints[endpoint] = (endpoints[endpoint] ?? 0) + count;
      return { node: node.node, connected_clients: node.connected, endpoints: node.endpoints };
    });
    return { connected_clients: total, timestamp: new Date().toISOString(), backend: cluster.backend, endpoints, nodes };
  }

  /** This node's counts. */
  localStats(): SseNodeStats {
    const stats: SseNodeStats = {
      node: this.nodeId,
      connected: this.registry.size,
      endpoints: this.registry.endpointCounts(),
      updatedAt: Date.now(),
    };
    if (this.countedKeys.size > 0) {
      stats.keys = {};
      for (const key of this.countedKeys) stats.keys[key] = this.registry.valueCounts(key);
    }
    return stats;
  }

  /**
   * @internal the other nodes' counts, at most a second old, for cluster-wide connection limits
   * (a single-process transport reports only this node, so there are none). A failed read counts
   * as no other node (fail open: an outage must not refuse every connection).
   */
  otherNodes(): Promise<SseNodeStats[]> {
    const now = Date.now();
    if (this.othersCache === undefined || now - this.othersCache.at > OTHERS_TTL) {
      const promise = this.transport.clusterStats().then(
        (cluster) => cluster.nodes.filter((node) => node.node !== this.nodeId),
        () => [],
      );
      this.othersCache = { at: now, promise };
    }
    return this.othersCache.promise;
  }

  /** Calls `listener` whenever a stream of this node closes. Returns a function that removes it. */
  onStreamClose(listener: (stream: SseStream, reason: SseCloseReason) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** True once shutdown began: new streams are told to come back later. */
  get isDraining(): boolean {
    return this.draining;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      await this.transport.start({
        nodeId: this.nodeId,
        deliver: (envelope) => this.deliver(envelope),
        localStats: () => this.localStats(),
      });
      this.isReady = true;
      this.readyResolve();
    } catch (err) {
      this.startError = err;
      this.readyReject(err);
      throw err;
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.draining = true;
    await this.drain(this.options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT);
  }

  async onApplicationShutdown(): Promise<void> {
    this.draining = true;
    this.closed = true;
    for (const stream of [...this.registry.values()]) stream.end('shutdown');
    this.heartbeats.stop();
    for (const [seq, pending] of this.pending) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.resolve(0);
      this.pending.delete(seq);
    }
    if (this.started) {
      this.started = false;
      await this.transport.close();
    }
  }

  /**
   * @internal ends every stream, spread over `window` ms, each with a `retry` hint jittered over
   * the same window so that clients do not all come back at the same instant.
   */
  async drain(window: number): Promise<void> {
    const streams = [...this.registry.values()];
    if (streams.length === 0) return;
    const base = DEFAULT_RETRY;
    if (!(window > 0)) {
      for (const stream of streams) stream.end('shutdown', encodeSseRetry(base + Math.random() * 1000));
      return;
    }
    const started = Date.now();
    const batches = Math.max(1, Math.min(streams.length, Math.ceil(window / 20)));
    const perBatch = Math.ceil(streams.length / batches);
    for (let i = 0; i < streams.length; i += perBatch) {
      for (const stream of streams.slice(i, i + perBatch)) {
        stream.end('shutdown', encodeSseRetry(base + Math.random() * window));
      }
      const next = started + ((i / perBatch + 1) * window) / batches;
      const wait = next - Date.now();
      if (wait > 0 && i + perBatch < streams.length) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /**
   * @internal records an endpoint's name (the `@SseEndpoint` path) and the full paths its stream
   * is served at, so `broadcast({ endpoint })` takes either.
   */
  nameEndpoint(path: string, streamPaths: readonly string[]): void {
    this.endpointNames.set(path, path);
    for (const full of streamPaths) if (!this.endpointNames.has(full)) this.endpointNames.set(full, path);
  }

  /**
   * The endpoint a broadcast names, as the registry knows it. An app without endpoints (a node
   * that only publishes) cannot tell, and passes the name on.
   */
  private endpointOf(name: string | undefined): string | undefined {
    if (name === undefined || this.endpointNames.size === 0) return name;
    const path = this.endpointNames.get(name) ?? this.endpointNames.get(`/${name.trim().replace(/^\/+|\/+$/g, '')}`);
    if (path === undefined) {
      const known = [...new Set(this.endpointNames.values())];
      throw new SseEventError(
        `No endpoint '${name}' in this app; its endpoints are ${known.join(', ')} (the @SseEndpoint paths; ` +
          `the full paths they are served at are accepted too).`,
      );
    }
    return path;
  }

  /** @internal the runtime of one endpoint, made on first use. */
  endpointFor(definition: SseEndpointDefinition): SseEndpointRuntime {
    let runtime = this.endpoints.get(definition);
    if (runtime === undefined) {
      runtime = new SseEndpointRuntime(this, definition);
      this.endpoints.set(definition, runtime);
    }
    return runtime;
  }

  /** @internal registers an opening stream: it receives live events (held until it opens). */
  register(stream: SseStream, heartbeatMs: number, writePath: 'socket' | 'response' = 'response'): void {
    this.registry.add(stream);
    this.heartbeats.add(stream, heartbeatMs);
    this.counters.opened++;
    if (openChannel.hasSubscribers) openChannel.publish({ stream, writePath } satisfies SseStreamOpenMessage);
  }

  /**
   * @internal replays what `stream` missed after its `Last-Event-ID`, or sends the reset event;
   * returns what held live events to skip: those replayed, and (when the transport orders its
   * ids) those at or before the replay point, which the client already had from another node.
   */
  async replayInto(stream: SseStream, lastEventId: string, limit: number): Promise<{ has(id: string): boolean }> {
    const replayed = new Set<string>();
    let result;
    try {
      result = isResumableId(lastEventId)
        ? await this.transport.replay(lastEventId, limit)
        : ({ status: 'reset', reason: 'malformed' } as const);
    } catch (err) {
      this.logger.error(`Replay after a Last-Event-ID failed: ${(err as Error).message}`, (err as Error).stack);
      result = { status: 'reset', reason: 'unknown' } as const;
    }
    if (result.status === 'reset') {
      this.counters.resets++;
      stream.write(encodeSseFrame({ event: SSE_RESET_EVENT, data: JSON.stringify({ reason: result.reason }) }));
      return replayed;
    }
    this.counters.replays++;
    for (const envelope of result.events) {
      replayed.add(envelope.id);
      if (envelope.target !== undefined || !streamMatches(stream, envelope.endpoint, envelope.filter)) continue;
      stream.write(this.frameOf(envelope), messageOf(envelope));
      this.counters.replayedEvents++;
    }
    const after = result.after;
    const transport = this.transport;
    if (after === undefined || transport.compareIds === undefined) return replayed;
    return { has: (id) => replayed.has(id) || transport.compareIds!(id, after) <= 0 };
  }

  /** @internal validates a message and makes the envelope to publish. */
  draft(message: SseBroadcast): SseEnvelopeDraft {
    if (message === null || typeof message !== 'object') throw new SseEventError('a broadcast must be an object with data');
    const event = message.event === undefined ? undefined : assertSseField('event', message.event);
    const eventId = message.id === undefined ? undefined : assertSseField('id', message.id);
    return {
      eventId,
      event,
      data: serializeSseData(message.data),
      endpoint: message.endpoint,
      filter: message.filter === undefined ? undefined : normalizeFilter(message.filter),
      origin: this.nodeId,
      seq: ++this.seq,
      time: Date.now(),
    };
  }

  /** @internal publishes a draft and resolves with how many streams of this node got it. */
  publish(draft: SseEnvelopeDraft): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const seq = draft.seq;
      const pending: Pending = { resolve };
      this.pending.set(seq, pending);
      this.counters.published++;
      this.transport.publish(draft).then(
        () => {
          // Memory delivers inside publish; a distributed transport delivers when the event comes back.
          if (this.pending.has(seq)) {
            pending.timer = setTimeout(() => {
              this.pending.delete(seq);
              resolve(0);
            }, ECHO_TIMEOUT);
            pending.timer.unref();
          }
        },
        (err) => {
          this.pending.delete(seq);
          reject(err);
        },
      );
    });
  }

  /** Hands one envelope to this node's matching streams: encode once, write many. */
  private deliver(envelope: SseEnvelope): void {
    let reached = 0;
    try {
      const frame = this.frameOf(envelope);
      const message = messageOf(envelope);
      if (envelope.target !== undefined) {
        const stream = this.registry.get(envelope.target);
        if (stream !== undefined) {
          stream.deliver(frame, envelope.id, message);
          reached = 1;
        }
      } else {
        reached = this.registry.forEachMatch(envelope.endpoint, envelope.filter, (stream) =>
          stream.deliver(frame, envelope.id, message),
        );
      }
      this.counters.delivered += reached;
    } catch (err) {
      this.logger.error(`Dropped event ${envelope.id}: ${(err as Error).message}`);
    }
    if (envelope.origin === this.nodeId) {
      const pending = this.pending.get(envelope.seq);
      if (pending !== undefined) {
        this.pending.delete(envelope.seq);
        if (pending.timer) clearTimeout(pending.timer);
        pending.resolve(reached);
      }
    }
  }

  /**
   * The bytes of one envelope, encoded once. Fields are checked again here because an envelope
   * may come from the wire (another node, or junk on a shared Redis).
   */
  private frameOf(envelope: SseEnvelope): Buffer {
    let frame = this.frames.get(envelope);
    if (frame === undefined) {
      if (envelope.event !== undefined) assertSseField('event', envelope.event);
      if (envelope.eventId !== undefined) assertSseField('id', envelope.eventId);
      frame = encodeSseFrame(messageOf(envelope));
      this.frames.set(envelope, frame);
    }
    return frame;
  }

  private readonly flushDirty = (): void => {
    this.flushArmed = false;
    const dirty = this.dirty;
    this.dirty = [];
    const now = Date.now();
    for (let i = 0; i < dirty.length; i++) dirty[i].flush(now);
  };

  private onStreamClosed(stream: SseStream, reason: SseCloseReason): void {
    this.registry.remove(stream);
    this.heartbeats.remove(stream);
    this.counters.closed++;
    if (reason === 'slow') this.counters.slowDisconnects++;
    if (closeChannel.hasSubscribers) closeChannel.publish({ stream, reason } satisfies SseStreamCloseMessage);
    for (const listener of this.closeListeners) {
      try {
        listener(stream, reason);
      } catch (err) {
        this.logger.error(`A stream close listener threw: ${(err as Error).message}`, (err as Error).stack);
      }
    }
  }

  /**
   * Resolves once broadcasts can flow; rejects with what to do when they cannot: the app is
   * closed, the transport failed to start, or the app did not start within `readyTimeout`.
   */
  private async ensureReady(): Promise<void> {
    if (this.closed) throw new SseLifecycleError(hubClosed());
    if (this.isReady) return;
    if (this.startError !== undefined) throw this.startFailed();
    const ms = this.options.readyTimeout ?? DEFAULT_READY_TIMEOUT;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SseLifecycleError(hubNotReady(ms))), ms);
    });
    try {
      await Promise.race([this.ready.catch(() => Promise.reject(this.startFailed())), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) throw new SseLifecycleError(hubClosed());
  }

  private startFailed(): SseLifecycleError {
    const err = this.startError as Error | undefined;
    return new SseLifecycleError(hubStartFailed(err?.message ?? String(err)), { cause: err });
  }
}

/** Turns a user's filter into key → string values; throws `SseEventError` naming the bad key. */
export function normalizeFilter(filter: SseFilter): NormalizedFilter | undefined {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new SseEventError('filter must be an object of metadata keys to a value or a list of values');
  }
  const out: NormalizedFilter = Object.create(null);
  let keys = 0;
  for (const key of Object.keys(filter)) {
    const problem = metadataKeyProblem(key);
    if (problem !== undefined) throw new SseEventError(`filter key ${problem}`);
    const raw = filter[key];
    const list = Array.isArray(raw) ? raw : [raw];
    const values: string[] = [];
    for (const value of list) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new SseEventError(`filter.${key} must be a string, number or boolean, or a list of them`);
      }
      values.push(String(value));
    }
    if (values.length === 0) throw new SseEventError(`filter.${key} is an empty list, which matches nothing`);
    out[key] = values;
    keys++;
  }
  return keys === 0 ? undefined : out;
}

/** What `messages$` subscribers see for an envelope: the publisher's id when it gave one. */
function messageOf(envelope: SseEnvelope): { id: string; event: string | undefined; data: string } {
  return { id: envelope.eventId ?? envelope.id, event: envelope.event, data: envelope.data };
}
