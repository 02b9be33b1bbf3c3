/**
 * One broadcast as it travels between nodes. The transport assigns `id`; everything else is set
 * by the hub that published it.
 */
export interface SseEnvelope {
  /** Assigned by the transport: unique and ordered across the cluster. */
  id: string;
  /** An id given by the publisher; written on the wire instead of `id` when present. */
  eventId?: string;
  event?: string;
  /** Serialized data. */
  data: string;
  /** Only connections of this endpoint path. */
  endpoint?: string;
  /** Normalized filter: key to accepted values. */
  filter?: Record<string, string[]>;
  /** Only the connection with this id (a targeted send); never replayed. */
  target?: string;
  /** Node that published it. */
  origin: string;
  /** The publishing node's sequence number, to resolve its pending call. */
  seq: number;
  /** Publish time, ms since the epoch. */
  time: number;
  /**
   * Set only by a transport that routes by metadata, on the envelopes it delivers to its own node
   * (never sent between nodes): the id each stream gets, by the values it holds under a route key.
   */
  routed?: SseRoutedIds;
}

/** The ids of a routed envelope: one per set of routed values its recipients hold. */
export interface SseRoutedIds {
  /** The route key. */
  readonly key: string;
  /**
   * The id written to the streams holding `values` under `key` (none, one, or several; in the
   * order the stream holds them). Undefined when those streams do not take the envelope from this
   * delivery (it reaches them from another of the Streams they read).
   */
  idOf(values: readonly string[]): string | undefined;
}

/** What a transport may read of a resuming stream: its metadata. */
export interface SseMetadataView {
  getMetadataValues(key: string): readonly string[];
}

/** An envelope before the transport has given it an id. */
export type SseEnvelopeDraft = Omit<SseEnvelope, 'id' | 'routed'>;

/** Connection counts of one node. */
export interface SseNodeStats {
  node: string;
  connected: number;
  endpoints: Record<string, number>;
  /** Counts per value of the metadata keys the app asked to count (connection limits). */
  keys?: Record<string, Record<string, number>>;
  /** When the node reported, ms since the epoch. */
  updatedAt: number;
}

/** Counts of every live node. */
export interface SseClusterStats {
  backend: string;
  nodes: SseNodeStats[];
}

/** What replay answers for a `Last-Event-ID`. */
export type SseReplayResult =
  | {
      status: 'ok';
      events: SseEnvelope[];
      /**
       * The transport id the events follow (`afterId` itself, or what a publisher's id stands for).
       * With `compareIds`, a node whose delivery lags behind the node the client came from skips
       * live events at or before it, which the client already had.
       */
      after?: string;
    }
  | { status: 'reset'; reason: SseResetReason };

/**
 * Why a stream is sent `sse.reset`: its `Last-Event-ID` is one the history never gave
 * (`unknown`), older than what it keeps (`expired`) or not an id (`malformed`); or events it was
 * owed were lost before they reached it (`lost`: a Redis master failed over before its replica
 * received them, or they were trimmed before this node read them).
 */
export type SseResetReason = 'unknown' | 'expired' | 'malformed' | 'lost';

/** What the hub hands to its transport when it starts it. */
export interface SseTransportContext {
  /** This node's id (random per process). */
  readonly nodeId: string;
  /** Hands an envelope to this node's hub; call once per envelope, in id order. */
  deliver(envelope: SseEnvelope): void;
  /** This node's current counts, for cluster-wide stats. */
  localStats(): SseNodeStats;
  /**
   * Says that an envelope this node published and the transport accepted will not come back to
   * this node (a routing transport sent it only to nodes holding its values): its publisher stops
   * waiting for it and counts no stream of this node.
   */
  passed?(draft: SseEnvelopeDraft): void;
  /**
   * Says that events of `value` under the route key `key` were lost before this node delivered
   * them (a routing transport found them gone from that value's history): every stream of this
   * node holding the value is sent `sse.reset` (`{"reason":"lost"}`) in line with its live events,
   * so that its client reloads its state rather than going on with a gap.
   */
  lost?(key: string, value: string): void;
}

/**
 * A backend that carries broadcasts to every node, assigns their ids, keeps their history and
 * reports connection counts across the cluster. `MemoryTransport` serves one process;
 * `RedisTransport` (`@nest-sse/redis`) serves many.
 *
 * `SseTransport` is also the injection token of the transport in use.
 *
 * Rules a transport follows:
 * - `publish` resolves once the envelope is accepted (it will reach every node, this one
 *   included, exactly once) with the id it assigned.
 * - It calls `context.deliver` for every envelope, its own node's included, in id order.
 * - It never throws into the event loop: bad input from the wire is logged and dropped.
 *
 * @publicApi
 */
export interface SseTransport {
  /** Name reported by the stats route, for example `memory` or `redis`. */
  readonly backend: string;
  /** Connects and starts delivering; resolves when ready. */
  start(context: SseTransportContext): Promise<void>;
  /** Accepts an envelope for every node; resolves with its id. */
  publish(envelope: SseEnvelopeDraft): Promise<string>;
  /**
   * Events after `afterId`, oldest first, at most `limit`; or why they cannot be had. Rejects
   * with an `SseTransportUnavailableError` when the history is out of reach only for now: the
   * stream is then sent away with a retry hint instead of a reset. `stream` is the resuming
   * stream, for a transport whose ids depend on what the stream holds (routed delivery).
   */
  replay(afterId: string, limit: number, stream?: SseMetadataView): Promise<SseReplayResult>;
  /**
   * Orders two ids this transport assigned: negative when `a` came first, 0 when equal. Optional;
   * a distributed transport offers it so that replay never repeats an event at the seam.
   */
  compareIds?(a: string, b: string): number;
  /** Counts of every live node (this one included). */
  clusterStats(): Promise<SseClusterStats>;
  /**
   * Metadata keys whose values route this transport's traffic. Optional: a transport that names
   * some is told through `hold` which of their values this node's connections hold, so that it
   * can read only the traffic of those values.
   */
  readonly routeKeys?: readonly string[];
  /**
   * Called by the hub when the first connection of this node holding `value` under one of
   * `routeKeys` registers (`held` true), and when the last one holding it closes or drops the
   * value (false). Called synchronously, in that order, once per change; must not throw.
   */
  hold?(key: string, value: string, held: boolean): void;
  /**
   * Called before a stream holding `values` under one of `routeKeys` opens, and again before it
   * takes live events if its connect hook changed them: resolves once this node delivers every
   * event of those values published from now on. Rejects with an `SseTransportUnavailableError`
   * when it cannot follow them for now (the stream is then refused with 503, or sent away with
   * a retry hint). A value no stream comes to hold is let go again.
   */
  follow?(key: string, values: readonly string[]): Promise<void>;
  /** Stops delivering and closes what the transport opened. */
  close(): Promise<void>;
}

/** Injection token of the transport in use (the interface and its token share one name). */
export const SseTransport = Symbol('SseTransport');
