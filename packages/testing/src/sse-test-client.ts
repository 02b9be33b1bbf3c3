import type { INestApplication } from '@nestjs/common';

/** One event as a test sees it. */
export interface SseTestEvent {
  /** Event name (`message` when the server sent none). */
  event: string;
  data: string;
  /** `lastEventId` after this event. */
  id: string;
}

/** The part of the `EventSource` interface the client uses (the browser's, Node 22's, or the `eventsource` package's). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  addEventListener(type: string, listener: (ev: any) => void): void;
  close(): void;
}

/** A constructor of `EventSource`, for example `import { EventSource } from 'eventsource'`. */
export type EventSourceConstructor = new (url: string, init?: any) => EventSourceLike;

/** Options of `SseTestClient.connect`. */
export interface SseTestClientOptions {
  /**
   * The `EventSource` to use.
   * @default globalThis.EventSource
   */
  EventSource?: EventSourceConstructor;
  /**
   * Event names to collect besides `message`.
   * @default ['connection', 'sse.reset']
   */
  events?: string[];
  /** Request headers (the `eventsource` package sends them through its `fetch` option). */
  headers?: Record<string, string>;
  /** How long to wait for the stream to open, in ms. @default 5000 */
  openTimeout?: number;
}

/** Options of `waitFor`. */
export interface SseWaitOptions {
  /** @default 5000 */
  timeout?: number;
}

interface Waiter {
  match: (event: SseTestEvent) => boolean;
  resolve: (event: SseTestEvent) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A real `EventSource` connected to an app under test that collects what it receives.
 *
 * @example
 * const app = moduleRef.createNestApplication();
 * await app.listen(0);
 * const client = await SseTestClient.connect(app, '/channels?channel=news', { EventSource, events: ['update'] });
 * await hub.broadcast({ event: 'update', data: 'hi', filter: { channel: 'news' } });
 * expect((await client.waitFor('update')).data).toBe('hi');
 * client.close();
 * @publicApi
 */
export class SseTestClient {
  /** Every event received, in order. */
  readonly events: SseTestEvent[] = [];
  /** Number of times the connection (re)opened. */
  opens = 0;
  /** Number of errors (drops) the EventSource reported. */
  errors = 0;
  private readonly waiters = new Set<Waiter>();

  private constructor(readonly source: EventSourceLike, readonly url: string) {}

  /**
   * Opens a stream on an app (listening, for example on port 0) or a base URL, and resolves when
   * it is open.
   */
  static async connect(target: INestApplication | string, path: string, options: SseTestClientOptions = {}): Promise<SseTestClient> {
    const base = typeof target === 'string' ? target : (await target.getUrl()).replace('[::1]', '127.0.0.1');
    const url = new URL(path, base.endsWith('/') ? base : base + '/').toString();
    const Ctor = options.EventSource ?? (globalThis as any).EventSource;
    if (!Ctor) throw new Error('No EventSource here: pass options.EventSource (for example from the eventsource package).');
    const headers = options.headers;
    const init = headers
      ? { fetch: (input: string, init: any) => fetch(input, { ...init, headers: { ...init?.headers, ...headers } }) }
      : undefined;
    const source: EventSourceLike = new Ctor(url, init);
    const client = new SseTestClient(source, url);
    for (const name of new Set(['message', ...(options.events ?? ['connection', 'sse.reset'])])) {
      source.addEventListener(name, (ev: any) => client.push({ event: name, data: ev.data, id: ev.lastEventId }));
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        source.close();
        reject(new Error(`The stream at ${url} did not open within ${options.openTimeout ?? 5000} ms`));
      }, options.openTimeout ?? 5000);
      source.onopen = () => {
        client.opens++;
        clearTimeout(timer);
        resolve();
      };
      source.onerror = (ev: any) => {
        client.errors++;
        if (client.opens === 0 && source.readyState === 2) {
          clearTimeout(timer);
          reject(new Error(`The stream at ${url} failed to open${ev?.code ? ` (HTTP ${ev.code})` : ''}: ${ev?.message ?? ''}`));
        }
      };
    });
    source.onopen = () => {
      client.opens++;
    };
    source.onerror = () => {
      client.errors++;
    };
    return client;
  }

  /** Events of one name received so far. */
  named(event: string): SseTestEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /**
   * Resolves with the first event (already received or still to come) that has this name or
   * passes this predicate; rejects after the timeout with what did arrive.
   */
  waitFor(match: string | ((event: SseTestEvent) => boolean), options: SseWaitOptions = {}): Promise<SseTestEvent> {
    const test = typeof match === 'string' ? (e: SseTestEvent) => e.event === match : match;
    const found = this.events.find(test);
    if (found) return Promise.resolve(found);
    return this.wait(test, options.timeout ?? 5000, typeof match === 'string' ? `event '${match}'` : 'a matching event');
  }

  /** Resolves once `count` events pass `match` (all events when omitted). */
  async waitForCount(count: number, match?: string | ((event: SseTestEvent) => boolean), options: SseWaitOptions = {}): Promise<SseTestEvent[]> {
    const test = match === undefined ? () => true : typeof match === 'string' ? (e: SseTestEvent) => e.event === match : match;
    const deadline = Date.now() + (options.timeout ?? 5000);
    for (;;) {
      const got = this.events.filter(test);
      if (got.length >= count) return got;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Expected ${count} events, got ${got.length} from ${this.url}`);
      await this.wait(() => true, left, 'more events').catch(() => undefined);
    }
  }

  /** Closes the connection; pending waits reject. */
  close(): void {
    this.source.close();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('SseTestClient closed'));
    }
    this.waiters.clear();
  }

  private wait(match: (event: SseTestEvent) => boolean, timeout: number, what: string): Promise<SseTestEvent> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const seen = this.events.map((e) => e.event).join(', ') || 'nothing';
          reject(new Error(`Timed out after ${timeout} ms waiting for ${what} from ${this.url}; received: ${seen}`));
        }, timeout),
      };
      this.waiters.add(waiter);
    });
  }

  private push(event: SseTestEvent): void {
    this.events.push(event);
    for (const waiter of this.waiters) {
      if (waiter.match(event)) {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.resolve(event);
      }
    }
  }
}
