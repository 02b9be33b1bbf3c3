import { SSE_RESET_EVENT } from './protocol.js';
import {
  canShareTabs,
  inBrowserPage,
  SharedSource,
  sharedSource,
  type SharedSourceOptions,
  type Subscriber,
} from './shared-source.js';
import type {
  EventSourceConstructor,
  SseClientError,
  SseParseMode,
  SseClientEvent,
  SseClientOptions,
  SseClientRole,
  SseClientState,
  SseEventMap,
  SseResetInfo,
} from './sse-client-options.interface.js';
import { validateClientOptions } from './sse-client-options.validation.js';

type Handler = (data: any, event: SseClientEvent<any, any>) => void;

/**
 * A typed client of one `@nest-sse/core` stream. Clients of one URL share one connection in a
 * page and, where the browser has `BroadcastChannel` and Web Locks, across the tabs of the
 * origin, so that many tabs do not use up the browser's six connections per host.
 *
 * It keeps the stream alive (`EventSource`'s own reconnect, then exponential backoff with
 * jitter), resumes after the last event id it saw, and reports an `sse.reset` from the server
 * (the id could not be resumed: reload what you show) through `onReset`. Given `headers`, it
 * reads the stream with `fetch` instead, and stops on a final refusal (401, 403, other 4xx)
 * with the status in `onError` and `stopReason`.
 *
 * @example
 * import type { AppEvents } from '../shared/events';
 * const client = new SseClient<AppEvents>('/channels?channel=news');
 * client.on('update', (data) => render(data.title));
 * client.onReset(() => reloadAll());
 * // later
 * client.close();
 * @publicApi
 */
export class SseClient<M extends SseEventMap = SseEventMap> {
  /** Absolute URL of the stream. */
  readonly url: string;
  private readonly source: SharedSource;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly resetHandlers = new Set<(info: SseResetInfo) => void>();
  private readonly stateHandlers = new Set<(state: SseClientState) => void>();
  private readonly errorHandlers = new Set<(error: SseClientError) => void>();
  private readonly parse: (raw: string, event: string) => unknown;
  private readonly subscriber: Subscriber;
  private closed = false;

  constructor(url: string | URL, options: SseClientOptions<M> = {}) {
    validateClientOptions(options);
    this.url = absoluteUrl(url);
    const sourceOptions = connectionOptions(options);
    const parse = options.parse ?? parseData;
    this.parse = typeof parse === 'function' ? parse : byEvent(parse as Record<string, SseParseMode | undefined>);
    this.subscriber = {
      event: (name, raw, id) => this.dispatch(name, raw, id),
      state: (state) => {
        for (const handler of this.stateHandlers) safely(handler, state);
      },
      error: (error) => {
        for (const handler of this.errorHandlers) safely(handler, error);
      },
    };
    this.source =
      options.share === false
        ? new SharedSource(this.url, sourceOptions, () => undefined)
        : sharedSource(shareKey(this.url, sourceOptions), this.url, sourceOptions);
    this.source.attach(this.subscriber);
  }

  /** `connecting`, `open` or `closed` (after `close()`, or once the server refused the stream for good). */
  get state(): SseClientState {
    return this.closed ? 'closed' : this.source.state;
  }

  /**
   * Why the stream stopped for good, once it did: `{ status: 401, message, final: true }`. The
   * fetch connection knows every status; a browser's `EventSource` never tells one, so with it
   * this stays `undefined` and the client keeps backing off.
   */
  get stopReason(): SseClientError | undefined {
    return this.source.stopReason;
  }

  /** The last event id received (what a reconnect resumes after). */
  get lastEventId(): string | undefined {
    return this.source.lastEventId;
  }

  /** Whether this page holds the connection (`own`, `leader`) or another tab relays it (`follower`). */
  get role(): SseClientRole {
    return this.source.role;
  }

  /**
   * Calls `handler` with the data of every `event`, parsed (JSON, or the text as it is).
   * Returns a function that removes the handler.
   */
  on<K extends keyof M & string>(event: K, handler: (data: M[K], event: SseClientEvent<K, M[K]>) => void): () => void {
    if (this.closed) return noop;
    let set = this.handlers.get(event);
    if (set === undefined) {
      this.handlers.set(event, (set = new Set()));
      this.source.addName(event);
    }
    set.add(handler as Handler);
    return () => set!.delete(handler as Handler);
  }

  /**
   * Calls `handler` when the server could not resume after our last id (it restarted, or we
   * were away longer than its history): events were missed, so reload what the page shows.
   */
  onReset(handler: (info: SseResetInfo) => void): () => void {
    this.resetHandlers.add(handler);
    return () => this.resetHandlers.delete(handler);
  }

  /** Calls `handler` when the connection opens or starts reconnecting. */
  onStateChange(handler: (state: SseClientState) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /**
   * Calls `handler` for every connection error: with `retryIn` when the client reconnects by
   * itself, with `final: true` (and the `status`) when it stopped for good.
   */
  onError(handler: (error: SseClientError) => void): () => void {
    this.errorHandlers.add(handler);
    return () => this.errorHandlers.delete(handler);
  }

  /** Stops listening; the last client of a URL closes its connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    this.resetHandlers.clear();
    this.errorHandlers.clear();
    this.source.detach(this.subscriber);
    for (const handler of this.stateHandlers) safely(handler, 'closed' as SseClientState);
    this.stateHandlers.clear();
  }

  private dispatch(name: string, raw: string, id: string): void {
    if (name === SSE_RESET_EVENT && this.resetHandlers.size > 0) {
      const parsed = parseData(raw) as Partial<SseResetInfo> | undefined;
      const info: SseResetInfo = { reason: typeof parsed?.reason === 'string' ? parsed.reason : 'unknown' };
      for (const handler of this.resetHandlers) safely(handler, info);
    }
    const set = this.handlers.get(name);
    if (set === undefined || set.size === 0) return;
    let data: unknown;
    try {
      data = this.parse(raw, name);
    } catch (err) {
      for (const handler of this.errorHandlers)
        safely(handler, { message: `parse failed for '${name}': ${(err as Error)?.message ?? err}` });
      return;
    }
    const event: SseClientEvent = { event: name, data, raw, id };
    for (const handler of set) safely(handler, data, event);
  }
}

/** What the shared source needs, every default applied; a bad combination is refused here. */
function connectionOptions(options: SseClientOptions<any>): SharedSourceOptions {
  const g = globalThis as any;
  const EventSource = options.EventSource ?? (g.EventSource as EventSourceConstructor | undefined);
  const fetchFn = options.fetch ?? (g.fetch as typeof fetch | undefined);
  const connection =
    options.connection ?? (options.headers !== undefined || EventSource === undefined ? 'fetch' : 'event-source');
  if (connection === 'event-source') {
    if (options.headers !== undefined)
      throw new Error(
        "EventSource cannot send headers: use connection: 'fetch', or put what the server needs in a cookie or the query.",
      );
    if (EventSource === undefined)
      throw new Error(
        "No EventSource here: pass options.EventSource (in Node, for example from the eventsource package), or use connection: 'fetch'.",
      );
  } else if (fetchFn === undefined) {
    throw new Error('No fetch here: pass options.fetch, or options.EventSource for an EventSource connection.');
  }
  const personal = options.headers !== undefined || options.query !== undefined;
  if (options.share === 'tabs' && personal) {
    throw new Error(
      "share: 'tabs' relays one tab's stream to the others, so it cannot be used with headers or query (each tab may be signed in differently): use 'page' or false.",
    );
  }
  const withCredentials = options.withCredentials ?? false;
  const share = options.share ?? (inBrowserPage() && !personal ? 'tabs' : 'page');
  return {
    connection,
    EventSource,
    fetch: fetchFn,
    withCredentials,
    credentials: options.credentials ?? (withCredentials ? 'include' : 'same-origin'),
    headers: options.headers,
    query: options.query,
    lastEventId: options.lastEventId,
    backoff: options.backoff,
    tabs: share === 'tabs' && canShareTabs(),
  };
}

const identities = new WeakMap<object, number>();
let identityCount = 0;
/** A number per headers or query object or function: clients share a connection only when theirs are the same. */
function identity(value: object | undefined): number {
  if (value === undefined) return 0;
  let id = identities.get(value);
  if (id === undefined) identities.set(value, (id = ++identityCount));
  return id;
}

/** Clients share a connection when everything that shapes its requests is the same. */
function shareKey(url: string, o: SharedSourceOptions): string {
  return [
    o.tabs ? 't' : 'p',
    o.connection,
    o.connection === 'fetch' ? o.credentials : o.withCredentials,
    identity(o.headers),
    identity(o.query),
    url,
  ].join(' ');
}

/** The parse of a per-event map; events it does not name get `parseData`. */
function byEvent(modes: Record<string, SseParseMode | undefined>): (raw: string, event: string) => unknown {
  return (raw, event) => {
    const mode = Object.prototype.hasOwnProperty.call(modes, event) ? modes[event] : undefined;
    if (mode === undefined) return parseData(raw);
    if (mode === 'text') return raw;
    if (mode === 'json') return JSON.parse(raw);
    return mode(raw);
  };
}

/** JSON when it is JSON, else the text as it is (the server sends strings unquoted). */
export function parseData(raw: string): unknown {
  const first = raw.charCodeAt(0);
  // only what can start a JSON document is tried: plain text costs no exception
  const jsonish =
    first === 123 ||
    first === 91 ||
    first === 34 ||
    first === 45 ||
    (first >= 48 && first <= 57) ||
    raw === 'true' ||
    raw === 'false' ||
    raw === 'null';
  if (!jsonish) return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function absoluteUrl(url: string | URL): string {
  const base = (globalThis as any).location?.href as string | undefined;
  try {
    return new URL(String(url), base).toString();
  } catch {
    throw new Error(`SseClient needs an absolute URL here (no page to resolve '${String(url)}' against).`);
  }
}

function safely<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
  try {
    fn(...args);
  } catch (err) {
    // one failing handler must not stop the others, nor the stream
    setTimeout(() => {
      throw err;
    });
  }
}

function noop(): void {}
