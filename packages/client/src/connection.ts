import { backoffDelay } from './backoff.js';
import { LAST_EVENT_ID_QUERY } from './protocol.js';
import type {
  EventSourceConstructor,
  SseBackoffOptions,
  SseClientError,
  SseClientState,
  SseHeaders,
  SseQuery,
} from './sse-client-options.interface.js';

/** The longest delay `setTimeout` takes (browsers and Node alike). */
const MAX_TIMER_MS = 2_147_483_647;

/** Where a connection reports what happens. */
export interface ConnectionSink {
  event(name: string, raw: string, id: string): void;
  state(state: SseClientState): void;
  error(error: SseClientError): void;
  /** The server refused the stream for good: the connection closed and will not reconnect. */
  stop(error: SseClientError): void;
}

export interface ConnectionOptions {
  connection: 'event-source' | 'fetch';
  EventSource: EventSourceConstructor | undefined;
  fetch: typeof fetch | undefined;
  withCredentials: boolean;
  credentials: RequestCredentials;
  headers: SseHeaders | undefined;
  query: SseQuery | undefined;
  lastEventId: string | undefined;
  backoff: SseBackoffOptions | undefined;
}

/** One stream kept alive: the native `EventSource` one or the fetch one. */
export interface Connection {
  readonly lastEventId: string | undefined;
  /** Connects, listening for these event names (the fetch connection hears every name anyway). */
  start(names: Iterable<string>): void;
  /** Starts listening for one more event name. */
  listen(name: string): void;
  close(): void;
}

/** What both connections share: the reconnect timer, the backoff steps, closing and stopping. */
export abstract class ReconnectingConnection implements Connection {
  lastEventId: string | undefined;
  /** Failed connects since the last open, for the backoff step. */
  protected attempt = 0;
  protected closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    protected readonly url: string,
    protected readonly options: ConnectionOptions,
    protected readonly sink: ConnectionSink,
  ) {
    this.lastEventId = options.lastEventId;
  }

  abstract start(names: Iterable<string>): void;
  abstract listen(name: string): void;
  /** One connect. */
  protected abstract open(): Promise<void>;
  /** Ends what the current connect holds. */
  protected abstract teardown(): void;

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.teardown();
  }

  /** Reports `error` and connects again after `delay` ms (by default the next backoff step). */
  protected reconnect(error: SseClientError, delay: number = backoffDelay(this.attempt++, this.options.backoff)): void {
    // timers take at most 2^31 - 1 ms and fire at once for more: a `Retry-After` a month away
    // (or such a `retry:` hint) would otherwise mean a retry now
    delay = Math.min(delay, MAX_TIMER_MS);
    error.retryIn = delay;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.open();
    }, delay);
    this.sink.state('connecting');
    this.sink.error(error);
  }

  /** The server refused the stream for good: closes, and says so. */
  protected stop(error: SseClientError): void {
    this.close();
    this.sink.stop({ ...error, final: true });
  }
}

/**
 * Whether a refusal is final: 204 (the standard's "stop reconnecting") and 4xx, except 408
 * and 429, which say "later". 401 and 403 will not change by asking again with the same
 * credentials; 5xx, 408 and 429 are worth a retry.
 */
export function isFinalStatus(status: number): boolean {
  return status === 204 || (status >= 400 && status < 500 && status !== 408 && status !== 429);
}

/** The URL of one connect: `query` applied, then `lastEventId` when there is one. */
export async function connectUrl(url: string, query: SseQuery | undefined, lastEventId?: string): Promise<string> {
  if (query === undefined && !lastEventId) return url;
  const parsed = new URL(url);
  const params = typeof query === 'function' ? await query() : query;
  if (params) for (const [key, value] of Object.entries(params)) parsed.searchParams.set(key, value);
  if (lastEventId) parsed.searchParams.set(LAST_EVENT_ID_QUERY, lastEventId);
  return parsed.toString();
}
