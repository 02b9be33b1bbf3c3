import { backoffDelay, retryAfterDelay } from './backoff.js';
import { connectUrl, isFinalStatus, ReconnectingConnection } from './connection.js';
import type { SseClientError } from './sse-client-options.interface.js';
import { SseParser } from './sse-parser.js';

/**
 * A stream read with `fetch`, for what `EventSource` cannot do: send headers (made before every
 * connect, so a refreshed token is used), choose `credentials`, and see the status of a refusal.
 *
 * It behaves as `EventSource` does where that is right: `Accept: text/event-stream`, no cache,
 * `Last-Event-ID` sent on every reconnect after the last id seen, the server's `retry:` hint
 * as the delay after a dropped stream. Where `EventSource` would give up or hide the reason it
 * is status-aware: 204 and 4xx other than 408 and 429 stop it for good and say so; 408, 429 and
 * 5xx back off, waiting at least what `Retry-After` asks; a network error or a dropped stream
 * backs off as well. `close()` aborts the request.
 */
export class FetchConnection extends ReconnectingConnection {
  /** The server's `retry:` hint, the delay after a stream that was open drops. */
  private retryHint: number | undefined;
  private abort: AbortController | undefined;

  start(): void {
    void this.open();
  }

  /** The stream carries every event name; the client picks the ones it has handlers for. */
  listen(): void {}

  protected teardown(): void {
    this.abort?.abort();
    this.abort = undefined;
  }

  protected async open(): Promise<void> {
    if (this.closed) return;
    const abort = new AbortController();
    this.abort = abort;
    let opened = false;
    try {
      const { headers: given, query, credentials } = this.options;
      const headers = new Headers(typeof given === 'function' ? await given() : given);
      headers.set('Accept', 'text/event-stream');
      if (this.lastEventId) headers.set('Last-Event-ID', this.lastEventId);
      const url = await connectUrl(this.url, query);
      if (this.closed) return;
      // `cache: 'no-store'` rather than a Cache-Control header, which would cost a CORS preflight
      const res = await (this.options.fetch ?? fetch)(url, { headers, credentials, cache: 'no-store', signal: abort.signal });
      if (this.closed) return;
      const type = res.headers.get('content-type') ?? '';
      if (res.status !== 200 || !/^text\/event-stream\b/i.test(type) || res.body === null) {
        await this.refused(res, type);
        return;
      }
      opened = true;
      this.attempt = 0;
      this.sink.state('open');
      const parser = new SseParser(
        {
          event: (name, data, id) => this.sink.event(name, data, id),
          retry: (ms) => (this.retryHint = ms),
        },
        this.lastEventId,
      );
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
        // what a reconnect resumes after (a blank line commits an id even when it dispatches nothing)
        this.lastEventId = parser.lastEventId || undefined;
      }
      parser.end();
      if (!this.closed) this.retry({ message: 'the stream ended' }, opened);
    } catch (err) {
      if (this.closed) return;
      this.retry({ message: (err as Error)?.message ?? String(err) }, opened);
    }
  }

  private async refused(res: Response, type: string): Promise<void> {
    const status = res.status;
    let message = `${status} ${res.statusText}`.trim();
    if (status === 200) message = `not an event stream (content-type: ${type || 'none'})`;
    if (status !== 200 && /json/i.test(type)) {
      // Nest's error body says why (`{ statusCode, message }`); it is small
      const body = await res.json().catch(() => undefined);
      const said = Array.isArray(body?.message) ? body.message.join('; ') : body?.message;
      if (typeof said === 'string' && said) message = `${status}: ${said}`;
    } else {
      await res.body?.cancel().catch(() => undefined);
    }
    if (this.closed) return;
    if (status !== 200 && isFinalStatus(status)) {
      this.stop({ status, message });
      return;
    }
    const error: SseClientError = { message };
    if (status !== 200) error.status = status;
    this.retry(error, false, retryAfterDelay(res.headers.get('retry-after')));
  }

  /**
   * Schedules the next connect: after a stream that was open, the server's `retry:` hint when it
   * gave one (as `EventSource` does); otherwise the next backoff step, and never sooner than
   * `Retry-After`.
   */
  private retry(error: SseClientError, wasOpen: boolean, atLeast = 0): void {
    const delay = wasOpen && this.retryHint !== undefined ? this.retryHint : backoffDelay(this.attempt++, this.options.backoff);
    this.reconnect(error, Math.max(delay, atLeast));
  }
}
