import type { INestApplication } from '@nestjs/common';
import { MAX_TIMER_MS, SSE_RESET_EVENT, SseOptionRules as R, validateOptions } from '@nest-sse/core';
import { WELCOME_EVENT } from './protocol.js';

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

const ms = R.integer({ min: 1, max: MAX_TIMER_MS, unit: 'ms' });
const CONNECT_OPTIONS = R.object({
  EventSource: R.function(),
  events: R.arrayOf(R.string('an event name')),
  headers: R.custom(
    'an object of header names to strings',
    (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((h) => typeof h === 'string'),
  ),
  openTimeout: ms,
} satisfies Record<keyof SseTestClientOptions, unknown>);
const WAIT_OPTIONS = R.object({ timeout: ms } satisfies Record<keyof SseWaitOptions, unknown>);
const COUNT = R.object({ count: R.integer({ min: 1 }) });

/** An event name, or a predicate over events. */
export type SseEventMatch = string | ((event: SseTestEvent) => boolean);

/** A pending wait: it resolves once `count` events passed `test`. */
interface Waiter {
  test: (event: SseTestEvent) => boolean;
  count: number;
  got: SseTestEvent[];
  resolve: (events: SseTestEvent[]) => void;
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

  private constructor(
    readonly source: EventSourceLike,
    readonly url: string,
  ) {}

  /**
   * Opens a stream on an app (listening, for example on port 0) or a base URL, and resolves when
   * it is open.
   */
  static async connect(
    target: INestApplication | string,
    path: string,
    options: SseTestClientOptions = {},
  ): Promise<SseTestClient> {
    validateOptions('SseTestClient.connect options', options, CONNECT_OPTIONS);
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
    for (const name of new Set(['message', ...(options.events ?? [WELCOME_EVENT, SSE_RESET_EVENT])])) {
      source.addEventListener(name, (ev: any) => client.push({ event: name, data: ev.data, id: ev.lastEventId }));
    }
    const openTimeout = options.openTimeout ?? 5000;
    // settles the open: resolves, or rejects with the error; only the first call counts
    let settle: ((err?: Error) => void) | undefined;
    const opening = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        source.close();
        settle?.(new Error(`The stream at ${url} did not open within ${openTimeout} ms`));
      }, openTimeout);
      settle = (err) => {
        settle = undefined;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
    });
    source.onopen = () => {
      client.opens++;
      settle?.();
    };
    source.onerror = (ev: any) => {
      client.errors++;
      if (client.opens === 0 && source.readyState === 2) {
        settle?.(new Error(`The stream at ${url} failed to open${ev?.code ? ` (HTTP ${ev.code})` : ''}: ${ev?.message ?? ''}`));
      }
    };
    await opening;
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
  async waitFor(match: SseEventMatch, options: SseWaitOptions = {}): Promise<SseTestEvent> {
    validateOptions('SseTestClient.waitFor options', options, WAIT_OPTIONS);
    const what = typeof match === 'string' ? `event '${match}'` : 'a matching event';
    const [first] = await this.wait(toTest(match), 1, options.timeout ?? 5000, what);
    return first;
  }

  /**
   * Resolves with the events that pass `match` (all events when omitted) once there are `count`
   * of them; rejects after the timeout, or when the client closes.
   */
  async waitForCount(count: number, match?: SseEventMatch, options: SseWaitOptions = {}): Promise<SseTestEvent[]> {
    validateOptions('SseTestClient.waitForCount options', options, WAIT_OPTIONS);
    validateOptions('SseTestClient.waitForCount', { count }, COUNT);
    const what = `${count} ${match === undefined ? '' : typeof match === 'string' ? `'${match}' ` : 'matching '}events`;
    return this.wait(toTest(match), count, options.timeout ?? 5000, what);
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

  /** Resolves with the events (received or still to come) that pass `test` once there are `count`. */
  private wait(test: (event: SseTestEvent) => boolean, count: number, timeout: number, what: string): Promise<SseTestEvent[]> {
    const got = this.events.filter(test);
    if (got.length >= count) return Promise.resolve(got);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        test,
        count,
        got,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const seen = this.events.map((e) => e.event).join(', ') || 'nothing';
          reject(
            new Error(
              `Timed out after ${timeout} ms waiting for ${what} (got ${waiter.got.length}) from ${this.url}; received: ${seen}`,
            ),
          );
        }, timeout),
      };
      this.waiters.add(waiter);
    });
  }

  private push(event: SseTestEvent): void {
    this.events.push(event);
    for (const waiter of this.waiters) {
      if (!waiter.test(event)) continue;
      waiter.got.push(event);
      if (waiter.got.length < waiter.count) continue;
      this.waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve(waiter.got);
    }
  }
}

/** An event name or a predicate as a predicate; every event passes when there is none. */
function toTest(match: SseEventMatch | undefined): (event: SseTestEvent) => boolean {
  if (match === undefined) return () => true;
  return typeof match === 'string' ? (event) => event.event === match : match;
}
