import { backoffDelay } from './backoff.js';
import type {
  EventSourceConstructor,
  EventSourceLike,
  SseBackoffOptions,
  SseClientError,
  SseClientState,
} from './sse-client-options.interface.js';

/** Query parameter the server reads in place of the `Last-Event-ID` header. */
export const LAST_EVENT_ID_QUERY = 'lastEventId';
const CLOSED = 2;

/** Where a connection reports what happens. */
export interface ConnectionSink {
  event(name: string, raw: string, id: string): void;
  state(state: SseClientState): void;
  error(error: SseClientError): void;
}

export interface ConnectionOptions {
  EventSource: EventSourceConstructor;
  withCredentials: boolean;
  lastEventId: string | undefined;
  backoff: SseBackoffOptions | undefined;
}

/**
 * One `EventSource` kept alive. `EventSource` reconnects by itself after a dropped stream,
 * honouring the server's `retry:` hint (which the server jitters on shutdown); this steps in
 * only when that is not enough: when it gave up (an HTTP error, a wrong content type) or its
 * own retry failed too. It then opens a new `EventSource` after an exponential, jittered
 * delay, resuming with `?lastEventId=` since a new `EventSource` sends no `Last-Event-ID`.
 */
export class EventSourceConnection {
  lastEventId: string | undefined;
  private source: EventSourceLike | undefined;
  private readonly names = new Set<string>();
  private attempt = 0;
  private errorsSinceOpen = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly options: ConnectionOptions,
    private readonly sink: ConnectionSink,
  ) {
    this.lastEventId = options.lastEventId;
  }

  start(names: Iterable<string>): void {
    for (const name of names) this.names.add(name);
    this.open();
  }

  /** Starts listening for one more event name. */
  listen(name: string): void {
    if (this.names.has(name)) return;
    this.names.add(name);
    this.source?.addEventListener(name, this.onEvent);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.source?.close();
    this.source = undefined;
  }

  private open(): void {
    this.timer = undefined;
    if (this.closed) return;
    const source = new this.options.EventSource(resumeUrl(this.url, this.lastEventId), {
      withCredentials: this.options.withCredentials,
    });
    this.source = source;
    this.errorsSinceOpen = 0;
    source.onopen = () => {
      if (source !== this.source) return;
      this.attempt = 0;
      this.errorsSinceOpen = 0;
      this.sink.state('open');
    };
    source.onerror = (ev: any) => {
      if (source !== this.source) return;
      this.errorsSinceOpen++;
      const error: SseClientError = {};
      if (typeof ev?.code === 'number') error.status = ev.code;
      if (typeof ev?.message === 'string' && ev.message) error.message = ev.message;
      if (source.readyState === CLOSED || this.errorsSinceOpen > 1) {
        source.close();
        this.source = undefined;
        error.retryIn = backoffDelay(this.attempt++, this.options.backoff);
        this.timer = setTimeout(() => this.open(), error.retryIn);
      }
      this.sink.state('connecting');
      this.sink.error(error);
    };
    for (const name of this.names) source.addEventListener(name, this.onEvent);
  }

  private readonly onEvent = (ev: MessageEvent): void => {
    if (ev.lastEventId) this.lastEventId = ev.lastEventId;
    this.sink.event(ev.type, typeof ev.data === 'string' ? ev.data : String(ev.data), ev.lastEventId ?? '');
  };
}

/** The URL with `lastEventId` set (or left as it is without an id). */
export function resumeUrl(url: string, lastEventId: string | undefined): string {
  if (!lastEventId) return url;
  const parsed = new URL(url);
  parsed.searchParams.set(LAST_EVENT_ID_QUERY, lastEventId);
  return parsed.toString();
}
