import {
  SseConfigurationError,
  type SseClusterStats,
  type SseEnvelopeDraft,
  type SseMetadataView,
  type SseReplayResult,
  type SseTransport,
  type SseTransportContext,
} from '@nest-sse/core';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import { compareStreamIds, isStreamId } from './redis-envelope.js';
import { RedisConnections } from './redis.connections.js';
import { RedisHistory } from './redis.history.js';
import { RedisKeys } from './redis.keys.js';
import { RedisNodeStats } from './redis.node-stats.js';
import { resolveRedisOptions, type ResolvedRedisOptions } from './redis.options.js';
import { RedisPublisher } from './redis.publisher.js';
import { RedisStreamReader } from './redis.reader.js';
import { RedisRouting } from './redis.routing.js';
import { POSITION, type ScriptClient } from './redis.scripts.js';
import type { RedisTransportOptions } from './redis-transport-options.interface.js';

/**
 * The distributed backend: every node appends its broadcasts to one capped Redis Stream per
 * prefix and reads that Stream from where it left off, so each node gets every event once, in
 * one order, with the Stream id as its event id. The same Stream is the shared history that
 * `Last-Event-ID` replays from, on any node. Each node keeps its connection counts under an
 * expiring lease, so the stats route can show the whole cluster.
 *
 * Its parts, each with one job: `RedisConnections` (the connections and outages),
 * `RedisPublisher` (appending in order, once), `RedisStreamReader` (reading and delivering),
 * `RedisHistory` (replay) and `RedisNodeStats` (leases and cluster counts); with `routeBy`,
 * `RedisRouting` (a Stream and shard channel per routed value, followed by the nodes that hold
 * it: `RedisRouteFollower`).
 *
 * @example
 * SseModule.forRoot(new RedisTransport({ url: process.env.REDIS_URL, prefix: 'my_app_sse' }))
 * @example
 * // a client the app already has: the transport never closes it
 * SseModule.forRoot(new RedisTransport({ client: redis }))
 * @example
 * // each node reads only the channels its connections hold
 * SseModule.forRoot(new RedisTransport({ url: process.env.REDIS_URL, routeBy: 'channel' }))
 * @publicApi
 */
export class RedisTransport implements SseTransport {
  readonly backend = 'redis';
  /** @internal the key names under the prefix (see "Keys" in the README). */
  readonly keys: RedisKeys;
  /** The metadata key that routes broadcasts (`routeBy`), if any. */
  readonly routeKeys: readonly string[] | undefined;
  private readonly options: ResolvedRedisOptions;
  private readonly connections: RedisConnections;
  private readonly publisher: RedisPublisher;
  private readonly history: RedisHistory;
  private readonly stats: RedisNodeStats;
  private reader: RedisStreamReader | undefined;
  private routing: RedisRouting | undefined;
  private context: SseTransportContext | undefined;

  constructor(options: RedisTransportOptions = {}) {
    this.options = resolveRedisOptions(options);
    this.keys = new RedisKeys(this.options.prefix);
    this.routeKeys = this.options.routeBy === undefined ? undefined : [this.options.routeBy];
    this.connections = new RedisConnections(this.options, () => {
      this.publisher.flush();
      this.routing?.flush();
    });
    this.publisher = new RedisPublisher(this.connections, this.keys, this.options);
    this.history = new RedisHistory(
      this.connections,
      this.keys,
      this.options,
      (id) => this.reader?.readThrough(id) ?? Promise.resolve(),
      () => this.reader?.lastId ?? '0-0',
    );
    this.stats = new RedisNodeStats(this.connections, this.keys, this.options);
  }

  async start(context: SseTransportContext): Promise<void> {
    if (this.context !== undefined)
      throw new SseConfigurationError('A RedisTransport serves one application: make one per SseModule.');
    this.context = context;
    const routeBy = this.options.routeBy;
    const routing =
      routeBy === undefined
        ? undefined
        : new RedisRouting(
            routeBy,
            this.connections,
            this.keys,
            this.options,
            context,
            this.history,
            () => this.reader?.lastId ?? '0-0',
          );
    const reader = new RedisStreamReader(this.connections, this.keys.events, this.options, (envelope) =>
      routing === undefined ? context.deliver(envelope) : routing.deliverMain(envelope),
    );
    let lastId: string;
    try {
      await this.connections.open();
      lastId = String((await POSITION.run(this.connections.commands as ScriptClient, [this.keys.events], [])) || '0-0');
      await this.stats.start(context);
    } catch (err) {
      await this.shutdown();
      throw err instanceof RedisUnavailableError || err instanceof SseConfigurationError
        ? err
        : new RedisUnavailableError(`RedisTransport could not start on ${this.connections.where()}: ${(err as Error).message}`);
    }
    this.reader = reader;
    reader.start(lastId);
    this.publisher.start(context.nodeId);
    this.routing = routing;
    routing?.start(context.nodeId);
  }

  publish(draft: SseEnvelopeDraft): Promise<string> {
    if (this.context === undefined || this.connections.closed) {
      return Promise.reject(
        new RedisUnavailableError(
          'RedisTransport is not running: publish after the application has bootstrapped and before it closes.',
        ),
      );
    }
    return this.routing?.routes(draft) ? this.routing.publish(draft) : this.publisher.publish(draft);
  }

  async replay(afterId: string, limit: number, stream?: SseMetadataView): Promise<SseReplayResult> {
    const routed = this.routing && stream ? await this.routing.replay(afterId, limit, stream) : undefined;
    return routed ?? this.history.replay(afterId, limit);
  }

  /** With `routeBy`: the hub tells which values this node's connections hold. */
  hold(_key: string, value: string, held: boolean): void {
    this.routing?.follower.hold(value, held);
  }

  /** With `routeBy`: resolves once this node delivers the events of `values`. */
  follow(_key: string, values: readonly string[]): Promise<void> {
    if (this.routing === undefined) {
      return Promise.reject(
        new RedisUnavailableError('RedisTransport is not running: streams open after the application has bootstrapped.'),
      );
    }
    return this.routing.follow(values);
  }

  /**
   * Orders two Stream ids; an id that is not one sorts after everything. With `routeBy`, a cursor
   * is 0 against a replay's end cursor when the replay covered it, 1 when it did not.
   */
  compareIds(a: string, b: string): number {
    const routed = this.routing?.compare(a, b);
    if (routed !== undefined) return routed;
    if (!isStreamId(a)) return 1;
    if (!isStreamId(b)) return -1;
    return compareStreamIds(a, b);
  }

  /**
   * This node's view of Redis, for `SseMetricsModule` (`nest_sse_transport{metric}` and
   * `nest_sse_transport_up`): read at scrape time, nothing is counted on the hot path.
   */
  metrics(): Record<string, number> {
    const since = this.connections.outageSince;
    return {
      connected: this.connections.connected,
      // broadcasts go out only while this connection is ready; until then they wait (pending_publishes)
      commands_connected: this.connections.commandsConnected,
      outages: this.connections.outages,
      outage_ms: since === undefined ? 0 : Date.now() - since,
      pending_publishes: this.publisher.pending + (this.routing?.pending ?? 0),
      unconfirmed_publishes: this.publisher.unconfirmed + (this.routing?.unconfirmed ?? 0),
      dropped_entries: (this.reader?.droppedEntries ?? 0) + (this.routing?.follower.droppedEntries ?? 0),
      gaps: (this.reader?.gaps ?? 0) + (this.routing?.follower.gaps ?? 0),
      ...(this.routing && {
        // routed delivery: values followed now, and entries read from a value's Stream to fill a gap
        routed_values: this.routing.follower.size,
        routed_filled: this.routing.follower.filled,
        // times the connections holding a value were sent sse.reset: events of it were lost (trimmed unread, or a failover)
        routed_lost: this.routing.follower.losses,
      }),
    };
  }

  clusterStats(): Promise<SseClusterStats> {
    return this.stats.read();
  }

  async close(): Promise<void> {
    if (this.connections.closed) return;
    this.connections.closed = true;
    this.stats.stop();
    await Promise.all([this.publisher.close(), this.routing?.close()]);
    await this.stats.leave();
    await this.shutdown();
  }

  /** Ends the reader and closes the connections the transport made (never the app's). */
  private async shutdown(): Promise<void> {
    this.connections.stopWatching();
    await this.reader?.stop();
    await this.connections.close();
  }
}
