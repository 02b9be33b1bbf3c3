/**
 * A map from event name to the type of its data, declared once and shared by the server
 * (`SseHub<AppEvents>`) and the client (`SseClient<AppEvents>`).
 *
 * @example
 * export interface AppEvents { update: { title: string }; tick: { time: string }; connection: string }
 */
// `any` rather than `unknown` so that an `interface` (which has no index signature) fits too.
export type SseEventMap = Record<string, any>;

/**
 * Where the connection is: as `EventSource.readyState`, in words. `closed` after `close()`, or
 * when the server refused the stream for good (`client.stopReason` says why).
 */
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

/** What the server said with `sse.reset`: the id we resumed from could not be replayed, or events we were owed were lost. */
export interface SseResetInfo {
  /**
   * `unknown` (an id from another server or before a restart), `expired` (older than history),
   * `malformed`, or `lost` (events owed to this stream were lost on the server's side, for example
   * with a Redis master that failed over; it may come in the middle of a stream).
   */
  reason: string;
}

/** An error seen by the connection. */
export interface SseClientError {
  /**
   * HTTP status of a refused stream. The fetch connection always knows it; a native
   * `EventSource` in a browser never tells it (the `eventsource` package in Node does).
   */
  status?: number;
  message?: string;
  /** Milliseconds until the client's own reconnect, when it scheduled one. */
  retryIn?: number;
  /** `true` when the client stopped for good (401, 403, another final 4xx, or 204): it will not reconnect. */
  final?: boolean;
}

/** Headers of the fetch connection: fixed, or made before every (re)connect (a refreshed token). */
export type SseHeaders = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** Query parameters added to the URL of every connect the client makes: fixed, or made before each one. */
export type SseQuery = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/**
 * How the data of one event becomes what its handlers get: `'text'` as received, `'json'`
 * through `JSON.parse` (a failure is reported to `onError`, the handlers are not called), or a
 * function of the raw text.
 */
export type SseParseMode<T = unknown> = 'json' | 'text' | ((raw: string) => T);

/** A parse mode per event name; `'text'` is offered only for events whose data is a string. */
export type SseParseMap<M extends SseEventMap = SseEventMap> = {
  [K in keyof M & string]?: (M[K] extends string ? 'text' : never) | 'json' | ((raw: string) => M[K]);
};

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

/** Delays of the client's own reconnects (after `EventSource` gave up, a refused or a failed fetch). */
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
export interface SseClientOptions<M extends SseEventMap = SseEventMap> {
  /**
   * `'event-source'` uses the platform's `EventSource` (it cannot send headers, and hides the
   * status of a refused stream); `'fetch'` reads the stream with `fetch` and parses it itself,
   * sends `headers`, sees every status and stops on a final one.
   * @default 'fetch' when `headers` is given or there is no `EventSource`, else 'event-source'
   */
  connection?: 'event-source' | 'fetch';
  /**
   * The `EventSource` to use; in Node, for example `import { EventSource } from 'eventsource'`.
   * @default globalThis.EventSource
   */
  EventSource?: EventSourceConstructor;
  /** The `fetch` of the fetch connection. @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Request headers of the fetch connection, for example `Authorization`. A function is called
   * before every connect and reconnect, so a refreshed token is used.
   */
  headers?: SseHeaders;
  /**
   * Query parameters set on the URL of every connect the client makes (for example a short-lived
   * stream token); a function is called before each. A native `EventSource`'s own quick retry
   * reuses the URL it was opened with; when that fails, the client's reconnect calls it again.
   */
  query?: SseQuery;
  /** Send cookies on a cross-origin stream (`credentials: 'include'` for the fetch connection). @default false */
  withCredentials?: boolean;
  /** `credentials` of the fetch connection. @default 'include' with `withCredentials`, else 'same-origin' */
  credentials?: RequestCredentials;
  /** Resume after this id on the first connect (the `lastEventId` query parameter, or the `Last-Event-ID` header with fetch). */
  lastEventId?: string;
  /**
   * Share one connection per URL: `tabs` across the tabs of an origin (needs `BroadcastChannel`
   * and Web Locks, else it falls back to `page`), `page` among the clients of one page, `false`
   * for a connection of this client's own. `tabs` is refused with `headers` or `query`: a tab
   * would get the stream of another tab's credentials.
   * @default 'tabs' in a browser page without `headers` or `query`, else 'page'
   */
  share?: 'tabs' | 'page' | false;
  /** Reconnect delays (exponential with jitter). */
  backoff?: SseBackoffOptions;
  /**
   * Turns the data of an event into what handlers get: one function for every event, or a mode
   * per event name (`{ note: 'text', update: 'json' }`). The wire cannot tell the string `'42'`
   * from the number `42` (the server sends strings as they are), so declare `'text'` for string
   * events whose text may look like JSON. `event.raw` always has the text as received.
   * @default JSON when the text is JSON, else the text as it is
   */
  parse?: ((raw: string, event: string) => unknown) | SseParseMap<M>;
}
