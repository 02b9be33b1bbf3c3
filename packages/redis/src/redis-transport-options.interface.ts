import type { Cluster, Redis, RedisOptions } from 'ioredis';

/**
 * Options of `RedisTransport`.
 *
 * @publicApi
 */
export interface RedisTransportOptions {
  /**
   * Where Redis is, when the transport makes its own connections.
   * @default 'redis://localhost:6379'
   */
  url?: string;
  /**
   * A client (`Redis` or `Cluster`) the app already has. The transport runs its commands on it,
   * duplicates it once for its blocking reader, and never closes it: it belongs to the app.
   */
  client?: Redis | Cluster;
  /** More ioredis options for the connections the transport makes from `url`. */
  redisOptions?: RedisOptions;
  /**
   * Start of every key. Apps (or environments) sharing one Redis use different prefixes and never
   * see each other's events. Letters, digits, `_`, `.`, `:` and `-`.
   * @default 'nest_sse'
   */
  prefix?: string;
  /**
   * Seconds within which a node that stopped without a goodbye (killed, crashed, cut off)
   * leaves the cluster-wide stats: the lifetime of each node's lease.
   * @default 60
   */
  cleanupInterval?: number;
  /**
   * How often, in ms, this node looks at its counts: it writes them when they changed, and renews
   * its lease when a third of it has passed. Other nodes see a change within about this long.
   * @default the smaller of 1000 and a third of cleanupInterval
   */
  statsInterval?: number;
  /**
   * Events kept in the Stream for `Last-Event-ID` replay (trimmed approximately, never below this).
   * The Stream also carries live delivery, so a node cut off from Redis for longer than it takes
   * to publish this many events misses some.
   * @default 10000
   */
  historySize?: number;
  /**
   * How long an event stays replayable, in ms; a publisher's own event id stays resumable as long.
   * @default 300000 (5 minutes)
   */
  historyMaxAge?: number;
  /**
   * How long a broadcast waits for Redis, in ms, when Redis cannot be reached. Until then it is
   * held on this node and sent, in order, as soon as Redis is back; after it, the broadcast
   * rejects with `RedisUnavailableError`. Replays wait as long for Redis before the client is
   * sent `sse.reset`.
   * @default 10000
   */
  publishTimeout?: number;
  /**
   * Broadcasts held on this node while Redis cannot be reached; more reject at once.
   * @default 10000
   */
  maxPendingPublishes?: number;
  /**
   * Longest wait between two reconnect attempts, in ms (the wait doubles from 50 ms up to it).
   * Applies to the connections the transport makes.
   * @default 2000
   */
  maxReconnectDelay?: number;
  /**
   * How long start-up waits for Redis before the application fails to start, in ms.
   * @default 10000
   */
  connectTimeout?: number;
  /**
   * Routed delivery: the metadata key (for example `'channel'` or `'user_id'`) whose values route
   * broadcasts. A broadcast whose filter names the key travels only to the nodes holding a
   * connection with one of its values (each value has its own Stream and shard channel, spread
   * over a Cluster's slots), and each node reads only the values its connections hold. Other
   * broadcasts still go to every node. Connections holding values of the key get cursor ids
   * (several Stream positions in one id). Unset: one Stream that every node reads.
   */
  routeBy?: string;
  /**
   * Stream entries read per round trip.
   * @default 512
   */
  readBatchSize?: number;
}
