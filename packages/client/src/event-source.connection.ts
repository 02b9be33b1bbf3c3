import { connectUrl, isFinalStatus, ReconnectingConnection } from './connection.js';
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
export class EventSourceConnection extends ReconnectingConnection {
  private source: EventSourceLike | undefined;
  private readonly names = new Set<string>();
  private errorsSinceOpen = 0;

  start(names: Iterable<string>): void {
    for (const name of names) this.names.add(name);
    void this.open();
  }

  listen(name: string): void {
    if (this.names.has(name)) return;
    this.names.add(name);
    this.source?.addEventListener(name, this.onEvent);
  }

  protected teardown(): void {
    this.source?.close();
    this.source = undefined;
  }

  protected async open(): Promise<void> {
    let url: string;
    try {
      url = await connectUrl(this.url, this.options.query, this.lastEventId);
    } catch (err) {
      this.reconnect({ message: `query failed: ${(err as Error)?.message ?? err}` });
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
        this.stop(error);
        return;
      }
      if (source.readyState === CLOSED || this.errorsSinceOpen > 1) {
        this.teardown();
        this.reconnect(error);
        return;
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
