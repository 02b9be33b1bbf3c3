import { backoffDelay } from './backoff.js';
import { connectUrl, isFinalStatus, type Connection, type ConnectionOptions, type ConnectionSink } from './connection.js';
import type { EventSourceLike, SseClientError } from './sse-client-options.interface.js';

const CLOSED = 2;

/**
 * One `EventSource` kept alive. `EventSource` reconnects by itself after a dropped stream,
 * honouring the server's `retry:` hint (which the server jitters on shutdown); this steps in
 * only when that is not enough: when it gave up (an HTTP error, a wrong content type) or its
 * own retry failed too. It then opens a new `EventSource` after an exponential, jittered
 * delay, resuming with `?lastEventId=` since a new `EventSource` sends no `Last-Event-ID`.
 *
 * A browser's `EventSource` does not say why it gave up: a 401 looks like a 503 or a dropped
 * network, so this keeps backing off. Where the status is known (the `eventsource` package
 * reports it as `code`), a final one (401, 403, other 4xx) stops it as the fetch connection does.
 */
export class EventSourceConnection implements Connection {
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
    void this.open();
  }

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

  private async open(): Promise<void> {
    this.timer = undefined;
    let url: string;
    try {
      url = await connectUrl(this.url, this.options.query, this.lastEventId);
    } catch (err) {
      this.retry({ message: `query failed: ${(err as Error)?.message ?? err}` });
      return;
    }
    if (this.closed) return;
    const source = new this.options.EventSource!(url, { withCredentials: this.options.withCredentials });
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
      if (error.status !== undefined && isFinalStatus(error.status)) {
        this.close();
        this.sink.stop({ ...error, final: true });
        return;
      }
      if (source.readyState === CLOSED || this.errorsSinceOpen > 1) {
        source.close();
        this.source = undefined;
        this.retry(error);
        return;
      }
      this.sink.state('connecting');
      this.sink.error(error);
    };
    for (const name of this.names) source.addEventListener(name, this.onEvent);
  }

  /** Schedules a new `EventSource` after the next backoff delay. */
  private retry(error: SseClientError): void {
    error.retryIn = backoffDelay(this.attempt++, this.options.backoff);
    this.timer = setTimeout(() => void this.open(), error.retryIn);
    this.sink.state('connecting');
    this.sink.error(error);
  }

  private readonly onEvent = (ev: MessageEvent): void => {
    if (ev.lastEventId) this.lastEventId = ev.lastEventId;
    this.sink.event(ev.type, typeof ev.data === 'string' ? ev.data : String(ev.data), ev.lastEventId ?? '');
  };
}
