/**
 * A map from event name to the type of its data, declared once and shared by the server
 * (`SseHub<AppEvents>`) and the client (`SseClient<AppEvents>`).
 *
 * @example
 * export interface AppEvents { update: { title: string }; tick: { time: string }; connection: string }
 */
// `any` rather than `unknown` so that an `interface` (which has no index signature) fits too.
export type SseEventMap = Record<string, any>;

/** Where the connection is: as `EventSource.readyState`, in words. */
export type SseClientState = 'connecting' | 'open' | 'closed';

/**
 * How this page takes part in the shared connection:
 * `own` — it has the connection to itself (sharing across tabs is off or unavailable);
 * `leader` — it holds the connection and relays every event to the other tabs;
 * `follower` — another tab of the origin holds it and relays to this one.
 */
export type SseClientRole = 'own' | 'leader' | 'follower';

/** What a handler gets besides the parsed data. */
export interface SseClientEvent<K extends string = string, D = unknown> {
  /** Event name (`message` for events sent without one). */
  event: K;
  /** The parsed data. */
  data: D;
  /** The data as received. */
  raw: string;
  /** The last event id after this event ('' when the server sent none yet). */
  id: string;
}

/** What the server said with `sse.reset`: the id we resumed from could not be replayed. */
export interface SseResetInfo {
  /** `unknown` (an id from another server or before a restart), `expired` (older than history) or `malformed`. */
  reason: string;
}

/** An error seen by the connection. */
export interface SseClientError {
  /** HTTP status when the server refused the stream (the `eventsource` package reports it). */
  status?: number;
  message?: string;
  /** Milliseconds until the client's own reconnect, when it scheduled one. */
  retryIn?: number;
}

/** The part of `EventSource` the client uses: the browser's, or the `eventsource` package's in Node. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  addEventListener(type: string, listener: (ev: any) => void): void;
  close(): void;
}

/** A constructor of `EventSource`. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** Reconnect delays used when `EventSource` gives up or its own retry failed. */
export interface SseBackoffOptions {
  /** First delay, in ms. @default 1000 */
  initialDelay?: number;
  /** Longest delay, in ms. @default 30000 */
  maxDelay?: number;
  /** Growth per failed attempt. @default 2 */
  factor?: number;
}

/**
 * Options of `new SseClient(url, options)`.
 *
 * @publicApi
 */
export interface SseClientOptions {
  /**
   * The `EventSource` to use; in Node, for example `import { EventSource } from 'eventsource'`.
   * @default globalThis.EventSource
   */
  EventSource?: EventSourceConstructor;
  /** Send cookies on a cross-origin stream. @default false */
  withCredentials?: boolean;
  /** Resume after this id on the first connect (sent as the `lastEventId` query parameter). */
  lastEventId?: string;
  /**
   * Share one connection per URL: `tabs` across the tabs of an origin (needs `BroadcastChannel`
   * and Web Locks, else it falls back to `page`), `page` among the clients of one page, `false`
   * for a connection of this client's own.
   * @default 'tabs'
   */
  share?: 'tabs' | 'page' | false;
  /** Reconnect delays (exponential with jitter). */
  backoff?: SseBackoffOptions;
  /**
   * Turns the data of an event into what handlers get.
   * @default JSON.parse, or the text as it is when it is not JSON
   */
  parse?: (raw: string, event: string) => unknown;
}
