/** A value a filter compares with a connection's metadata (compared as strings). */
export type SseFilterValue = string | number | boolean;

/**
 * Which connections an event is for. Every key must match (AND); an array matches any of its
 * values (OR); a connection whose metadata lacks a key never matches it.
 *
 * @example { channel: 'news' }
 * @example { channel: ['news', 'sports'], region: 'eu' }
 */
export type SseFilter = Record<string, SseFilterValue | readonly SseFilterValue[]>;

/**
 * A map from event name to the type of its data, declared once by an app to type
 * `SseHub<Events>` (and `@nest-sse/client`).
 *
 * @example
 * interface AppEvents { update: { title: string }; tick: number }
 */
export type SseEventMap = Record<string, unknown>;
// (an interface works too: `SseHub<AppEvents>` only needs an object type)

/** One event sent to a single stream. */
export interface SseMessage<E extends string = string, D = unknown> {
  /** Event name (`event:` field); the browser's `onmessage` sees events without one. */
  event?: E;
  /** Payload: strings are sent as they are, anything else as JSON. */
  data: D;
  /** Event id; omitted for direct sends, assigned by the transport for broadcasts. */
  id?: string;
}

/** A broadcast: one event for every matching connection on every node. */
export interface SseBroadcast<E extends string = string, D = unknown> extends SseMessage<E, D> {
  /** Only connections whose metadata matches. */
  filter?: SseFilter;
  /** Only connections of this endpoint (its path, for example `/events`); all when omitted. */
  endpoint?: string;
}

/** Options of `SseHub.broadcastEvent`. */
export interface SseBroadcastOptions {
  filter?: SseFilter;
  id?: string;
  endpoint?: string;
}

/** What a subscriber of `SseStream.messages$` sees for each event written to that stream. */
export interface SseStreamMessage {
  id?: string;
  event?: string;
  /** The data as sent (already serialized). */
  data: string;
}

/** Event names of a map; any string when the map is unknown (`SseHub` without a type argument). */
export type SseEventName<M> = [keyof M] extends [never] ? string : string extends keyof M ? string : keyof M & string;

/** The data type of one event of a map; `unknown` when the map does not name it. */
export type SseEventData<M, K> = K extends keyof M ? M[K] : unknown;

/** A broadcast whose data is checked against the event map `M`. */
export type SseTypedBroadcast<M> = [keyof M] extends [never]
  ? SseBroadcast
  : string extends keyof M
    ? SseBroadcast<string, M[keyof M]>
    : { [K in keyof M & string]: SseBroadcast<K, M[K]> }[keyof M & string];
