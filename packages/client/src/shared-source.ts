import type { Connection, ConnectionOptions, ConnectionSink } from './connection.js';
import { EventSourceConnection } from './event-source.connection.js';
import { FetchConnection } from './fetch.connection.js';
import type { SseClientError, SseClientRole, SseClientState } from './sse-client-options.interface.js';

/** Event the server sends when a `Last-Event-ID` cannot be resumed. */
export const SSE_RESET_EVENT = 'sse.reset';

/** What a `SseClient` hands to the shared source it listens through: what the connection reports, passed on (a stop as an error and the state `closed`). */
export type Subscriber = Omit<ConnectionSink, 'stop'>;

/** The connection's options, and whether to share it with the other tabs (the caller checked that they can). */
export type SharedSourceOptions = ConnectionOptions & { tabs: boolean };

/** Messages between the tabs of one origin that share a URL. */
type TabMessage =
  | { t: 'event'; name: string; raw: string; id: string }
  | { t: 'state'; state: SseClientState; id: string | undefined }
  | { t: 'hello'; names: string[] }
  | { t: 'names'; names: string[] }
  | { t: 'leader' }
  | { t: 'stop'; error: SseClientError };

interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<void>;
}

const CHANNEL_PREFIX = 'nest-sse:';
/** Events every connection listens for, whatever handlers exist. */
const BASE_EVENTS = ['message', SSE_RESET_EVENT];

/** The shared sources of this page, by key (URL, credentials and share mode). */
const sources = new Map<string, SharedSource>();

/** The one source of `url` in this page, made on first use. */
export function sharedSource(key: string, url: string, options: SharedSourceOptions): SharedSource {
  let source = sources.get(key);
  if (source === undefined) {
    source = new SharedSource(url, options, () => sources.delete(key));
    sources.set(key, source);
  }
  return source;
}

/** Whether this page can share a connection with its other tabs. */
export function canShareTabs(): boolean {
  const g = globalThis as any;
  return typeof g.BroadcastChannel === 'function' && typeof g.navigator?.locks?.request === 'function';
}

/**
 * Whether this is a browser page, where tabs exist. Node 22 and later have `BroadcastChannel`
 * and Node 24 Web Locks too, but a Node process has no tabs to share with (its
 * `BroadcastChannel` reaches worker threads), so sharing there is only on request.
 */
export function inBrowserPage(): boolean {
  const g = globalThis as any;
  return typeof g.document === 'object' && g.document !== null && typeof g.window === 'object';
}

/**
 * One stream of one URL, for every client of the page that listens to it; optionally for
 * every tab of the origin. Across tabs, the tab that holds a Web Lock named after the URL is
 * the leader: it alone connects and relays each event on a `BroadcastChannel`. When it closes
 * (or the tab goes away, which releases its lock) the next tab in the lock's queue takes over,
 * resuming after the last id it relayed.
 */
export class SharedSource {
  role: SseClientRole;
  state: SseClientState = 'connecting';
  lastEventId: string | undefined;
  /** Why the server refused the stream for good, once it did. */
  stopReason: SseClientError | undefined;
  private readonly subscribers = new Set<Subscriber>();
  /** Event names wanted in this page. */
  private readonly localNames = new Set<string>(BASE_EVENTS);
  /** Event names other tabs asked for. */
  private readonly remoteNames = new Set<string>();
  private connection: Connection | undefined;
  private channel: BroadcastChannel | undefined;
  private abort: AbortController | undefined;
  private releaseLock: (() => void) | undefined;
  private disposed = false;

  constructor(
    private readonly url: string,
    private readonly options: SharedSourceOptions,
    private readonly forget: () => void,
  ) {
    this.lastEventId = options.lastEventId;
    if (options.tabs) {
      this.role = 'follower';
      this.joinTabs();
    } else {
      this.role = 'own';
      this.connect();
    }
  }

  attach(subscriber: Subscriber): void {
    this.subscribers.add(subscriber);
  }

  /** Removes a subscriber; the last one out closes the stream (and hands leadership on). */
  detach(subscriber: Subscriber): void {
    if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
    this.dispose();
  }

  /** Listens for one more event name in this page. */
  addName(name: string): void {
    if (this.localNames.has(name)) return;
    this.localNames.add(name);
    this.connection?.listen(name);
    if (this.role === 'follower') this.post({ t: 'names', names: [name] });
  }

  private connect(): void {
    const sink: ConnectionSink = {
      event: (name, raw, id) => {
        if (id) this.lastEventId = id;
        if (this.role === 'leader') this.post({ t: 'event', name, raw, id });
        this.emitEvent(name, raw, id);
      },
      state: (state) => this.setState(state),
      error: (error) => {
        for (const subscriber of this.subscribers) subscriber.error(error);
      },
      stop: (error) => {
        if (this.role === 'leader') this.post({ t: 'stop', error });
        this.stop(error);
      },
    };
    const options = { ...this.options, lastEventId: this.lastEventId };
    this.connection =
      options.connection === 'fetch' ? new FetchConnection(this.url, options, sink) : new EventSourceConnection(this.url, options, sink);
    this.connection.start(new Set([...this.localNames, ...this.remoteNames]));
  }

  private joinTabs(): void {
    const channel = new BroadcastChannel(CHANNEL_PREFIX + this.url);
    this.channel = channel;
    channel.onmessage = (ev: MessageEvent<TabMessage>) => this.onTabMessage(ev.data);
    this.post({ t: 'hello', names: [...this.localNames] });
    this.abort = new AbortController();
    const locks = (globalThis as any).navigator.locks as LockManagerLike;
    locks
      .request(CHANNEL_PREFIX + this.url, { signal: this.abort.signal }, () => {
        if (this.disposed) return Promise.resolve();
        return new Promise<void>((release) => {
          this.releaseLock = release;
          this.lead();
        });
      })
      .catch(() => {
        // aborted: this page stopped listening before its turn came
      });
  }

  private lead(): void {
    this.role = 'leader';
    this.post({ t: 'leader' });
    this.connect();
  }

  private onTabMessage(message: TabMessage): void {
    if (this.disposed || message === null || typeof message !== 'object') return;
    switch (message.t) {
      case 'event':
        if (this.role !== 'follower') return;
        if (message.id) this.lastEventId = message.id;
        this.emitEvent(message.name, message.raw, message.id);
        return;
      case 'state':
        if (this.role !== 'follower') return;
        if (message.id) this.lastEventId ??= message.id;
        this.setState(message.state);
        return;
      case 'hello':
      case 'names':
        for (const name of message.names) {
          this.remoteNames.add(name);
          this.connection?.listen(name);
        }
        if (message.t === 'hello' && this.role === 'leader') this.post({ t: 'state', state: this.state, id: this.lastEventId });
        return;
      case 'leader':
        if (this.role === 'follower') this.post({ t: 'names', names: [...this.localNames] });
        return;
      case 'stop':
        // the leader's credentials are this tab's too (one origin): asking again would be refused as well
        if (this.role === 'follower') this.stop(message.error);
        return;
    }
  }

  /** The server refused the stream for good: every client of it is told, and it is closed. */
  private stop(error: SseClientError): void {
    this.stopReason = error;
    this.dispose();
    for (const subscriber of this.subscribers) {
      subscriber.error(error);
      subscriber.state('closed');
    }
  }

  private setState(state: SseClientState): void {
    if (this.role === 'leader') this.post({ t: 'state', state, id: this.lastEventId });
    if (state === this.state) return;
    this.state = state;
    for (const subscriber of this.subscribers) subscriber.state(state);
  }

  private emitEvent(name: string, raw: string, id: string): void {
    for (const subscriber of this.subscribers) subscriber.event(name, raw, id);
  }

  private post(message: TabMessage): void {
    try {
      this.channel?.postMessage(message);
    } catch {
      // a closed channel: this page is going away
    }
  }

  private dispose(): void {
    if (this.disposed) return;
    // followers see the stream as reconnecting until the next leader has opened its own
    if (this.role === 'leader' && this.stopReason === undefined) this.post({ t: 'state', state: 'connecting', id: this.lastEventId });
    this.disposed = true;
    this.forget();
    this.connection?.close();
    this.connection = undefined;
    this.abort?.abort();
    this.releaseLock?.();
    this.channel?.close();
    this.channel = undefined;
    this.state = 'closed';
  }
}
