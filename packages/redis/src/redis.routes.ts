import { Logger } from '@nestjs/common';
import type { SseEnvelope } from '@nest-sse/core';
import type { Client, RedisConnections } from './redis.connections.js';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import { compareStreamIds, decodeEntry, entriesOf, previousOf } from './redis-envelope.js';
import type { RedisKeys, RouteKeys } from './redis.keys.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { POSITION, type ScriptClient } from './redis.scripts.js';

/** How long a value no local connection holds any more stays followed (a client that reconnects finds it still there). */
export const DEFAULT_LINGER_MS = 5_000;

/** One routed value this node follows. */
interface Followed {
  readonly value: string;
  readonly keys: RouteKeys;
  /** The last entry delivered: undefined until the position is known, '' when the Stream did not exist. */
  lastId: string | undefined;
  /** Subscribing or filling a gap: live messages wait in `held`, in arrival order. */
  busy: boolean;
  readonly held: Array<{ id: string; previous: string; payload: string }>;
  /** Set while no local connection holds the value: when it fires, the node lets the value go. */
  linger: NodeJS.Timeout | undefined;
  /** Settles once the position is known (the value's events are delivered from then on), or it is let go first. */
  readonly ready: Promise<void>;
  settle(err?: Error): void;
  /** Callers waiting until an entry has been delivered (see `through`). */
  readonly waiters: Array<{ id: string; resolve: () => void }>;
}

/**
 * Routed delivery, the reading side: this node follows only the routed values its own connections
 * hold. Following a value is a sharded subscription to its live channel (SSUBSCRIBE, so on a
 * Cluster only the master that owns the value's slot carries it), with its Stream as the history
 * behind it. Every live message names the entry before it: a node that sees a jump (its
 * subscriber connection dropped, a publish raced its subscription) reads what it missed from the
 * Stream before it delivers on, so each value's events reach this node once, in order.
 */
export class RedisRouteFollower {
  /** Times entries of a followed value were gone from its Stream before this node read them. */
  gaps = 0;
  /** Entries delivered from a Stream rather than live: what a dropped connection or a race made this node miss. */
  filled = 0;
  droppedEntries = 0;
  private readonly logger = new Logger('RedisTransport');
  private readonly followed = new Map<string, Followed>();
  private readonly byChannel = new Map<string, Followed>();
  private subscriber: Client | undefined;
  private opening: Promise<Client> | undefined;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedRedisOptions,
    private readonly deliver: (envelope: SseEnvelope, value: string) => void,
    private readonly lingerMs = DEFAULT_LINGER_MS,
  ) {}

  /** How many values this node follows now (lingering ones included). */
  get size(): number {
    return this.followed.size;
  }

  /** The values this node follows now (lingering ones included). */
  values(): string[] {
    return [...this.followed.keys()];
  }

  /**
   * The last entry delivered of `value` ('0-0' when its Stream had none), if it is followed and
   * its position is known.
   */
  position(value: string): string | undefined {
    const lastId = this.followed.get(value)?.lastId;
    return lastId === '' ? '0-0' : lastId;
  }

  /** True when `value` is followed (its position may not be known yet). */
  follows(value: string): boolean {
    return this.followed.has(value);
  }

  /**
   * Follows `value` if it is not followed yet (let go again after the linger unless a connection
   * comes to hold it); resolves once its events are delivered from here on.
   */
  prepare(value: string): Promise<void> {
    let f = this.followed.get(value);
    if (f === undefined) {
      f = this.follow(value);
      f.linger = setTimeout(() => this.unfollow(f!), this.lingerMs);
      f.linger.unref();
    }
    return f.ready;
  }

  /**
   * Resolves once the entry `id` of `value` has been delivered here (at once if it has, or if
   * `value` is not followed), or after `timeout` ms.
   */
  through(value: string, id: string, timeout: number): Promise<void> {
    const f = this.followed.get(value);
    if (f === undefined || this.connections.closed || this.reached(f, id)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const at = f.waiters.indexOf(waiter);
        if (at !== -1) f.waiters.splice(at, 1);
        this.logger.warn(
          `This node is more than ${timeout} ms behind ${id} of ${f.value}; a resuming client may see some events twice.`,
        );
        resolve();
      }, timeout);
      timer.unref();
      const waiter = {
        id,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      f.waiters.push(waiter);
    });
  }

  /** A local connection holds `value` now (`held`), or none does any more. */
  hold(value: string, held: boolean): void {
    const existing = this.followed.get(value);
    if (held) {
      if (existing === undefined) this.follow(value);
      else if (existing.linger !== undefined) {
        clearTimeout(existing.linger);
        existing.linger = undefined;
      }
      return;
    }
    if (existing === undefined || existing.linger !== undefined) return;
    existing.linger = setTimeout(() => this.unfollow(existing), this.lingerMs);
    existing.linger.unref();
  }

  /** Forgets every value; the subscriber connection is closed with the others. */
  stop(): void {
    for (const f of this.followed.values()) {
      if (f.linger) clearTimeout(f.linger);
      this.release(f, new RedisUnavailableError('RedisTransport closed.'));
    }
    this.followed.clear();
    this.byChannel.clear();
  }

  private follow(value: string): Followed {
    const keys = this.keys.route(value);
    let settle!: (err?: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    // a prepare nobody waits for any more must not reject into the event loop
    ready.catch(() => undefined);
    const f: Followed = { value, keys, lastId: undefined, busy: true, held: [], linger: undefined, ready, settle, waiters: [] };
    this.followed.set(value, f);
    this.byChannel.set(keys.live, f);
    void this.subscribe(f);
    return f;
  }

  private unfollow(f: Followed): void {
    if (this.followed.get(f.value) !== f) return;
    this.followed.delete(f.value);
    this.byChannel.delete(f.keys.live);
    this.release(f, new RedisUnavailableError(`Stopped following ${f.value} before Redis answered.`));
    this.subscriber?.sunsubscribe(f.keys.live).catch(() => undefined);
  }

  /** Lets every caller waiting on `f` go: `prepare` rejects if the position was never known. */
  private release(f: Followed, err: Error): void {
    f.settle(err);
    for (const waiter of f.waiters.splice(0)) waiter.resolve();
  }

  private reached(f: Followed, id: string): boolean {
    return f.lastId !== undefined && f.lastId !== '' && compareStreamIds(f.lastId, id) >= 0;
  }

  private wake(f: Followed): void {
    if (f.waiters.length === 0) return;
    for (let i = f.waiters.length - 1; i >= 0; i--) {
      if (this.reached(f, f.waiters[i].id)) f.waiters.splice(i, 1)[0].resolve();
    }
  }

  /**
   * Subscribes, then reads where the Stream is: what was appended before the subscription took
   * effect counts as before the value was followed; everything after arrives live (and anything
   * that arrived before the position was read, and is not after it, is skipped).
   */
  private async subscribe(f: Followed): Promise<void> {
    while (!this.connections.closed && this.followed.get(f.value) === f) {
      try {
        const subscriber = await this.openSubscriber();
        await subscriber.ssubscribe(f.keys.live);
        const position = String(await POSITION.run(this.connections.commands as ScriptClient, [f.keys.events], []));
        f.lastId ??= position;
        f.busy = false;
        this.drain(f);
        f.settle();
        return;
      } catch (err) {
        if (this.connections.closed) return;
        this.logger.warn(`Following ${f.value} failed (${(err as Error).message}); trying again when Redis is back.`);
        const client = this.connections.subscriber ?? this.connections.commands!;
        if (!(await this.connections.whenReady(client, 1000))) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  private openSubscriber(): Promise<Client> {
    this.opening ??= this.connections
      .openSubscriber(() => this.resync())
      .then(
        (subscriber) => {
          subscriber.on('smessage', (channel: string, message: string) => this.onMessage(channel, message));
          this.subscriber = subscriber;
          return subscriber;
        },
        (err) => {
          this.opening = undefined;
          throw err;
        },
      );
    return this.opening;
  }

  private onMessage(channel: string, message: string): void {
    const f = this.byChannel.get(channel);
    if (f === undefined) return;
    const space = message.indexOf(' ');
    const newline = message.indexOf('\n');
    if (space <= 0 || newline < space) {
      this.droppedEntries++;
      this.logger.warn(`Dropped a message on ${channel} that this transport did not write.`);
      return;
    }
    f.held.push({
      id: message.slice(0, space),
      previous: message.slice(space + 1, newline),
      payload: message.slice(newline + 1),
    });
    if (!f.busy) this.drain(f);
  }

  /** Delivers held messages in order until one shows a gap, which is then filled from the Stream. */
  private drain(f: Followed): void {
    while (!f.busy && f.held.length > 0) {
      const next = f.held[0];
      if (f.lastId !== '' && f.lastId !== undefined && compareStreamIds(next.id, f.lastId) <= 0) {
        f.held.shift();
        continue;
      }
      if (next.previous !== f.lastId) {
        f.busy = true;
        void this.fill(f);
        return;
      }
      f.held.shift();
      this.hand(f, next.id, next.payload);
    }
    this.wake(f);
  }

  /** After a reconnect: messages may have been missed with the connection, so every value catches up from its Stream. */
  private resync(): void {
    for (const f of this.followed.values()) {
      if (f.busy || f.lastId === undefined) continue;
      f.busy = true;
      void this.fill(f);
    }
  }

  /** Reads the Stream after the last entry delivered and delivers it, then the held messages. */
  private async fill(f: Followed): Promise<void> {
    const batch = this.options.readBatchSize;
    for (let attempt = 0; !this.connections.closed && this.followed.get(f.value) === f; attempt++) {
      try {
        for (;;) {
          const start = f.lastId === '' ? '-' : `(${f.lastId}`;
          const entries = entriesOf(await this.connections.commands!.call('XRANGE', f.keys.events, start, '+', 'COUNT', batch));
          for (const [id, fields] of entries) {
            const previous = previousOf(fields);
            if (previous !== f.lastId) this.reportGap(f, id, previous);
            const envelope = decodeEntry(id, fields);
            f.lastId = id;
            this.filled++;
            if (typeof envelope === 'string') {
              this.droppedEntries++;
              this.logger.warn(`Dropped Stream entry ${id} of ${f.keys.events}: ${envelope}.`);
            } else this.handEnvelope(f, envelope);
          }
          if (entries.length < batch) break;
        }
        f.busy = false;
        this.drain(f);
        return;
      } catch (err) {
        if (this.connections.closed) return;
        if (attempt === 0) this.logger.warn(`Catching up on ${f.value} failed (${(err as Error).message}); trying again.`);
        await this.connections.whenReady(this.connections.commands!, Math.min(1000, this.options.maxReconnectDelay));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  private hand(f: Followed, id: string, payload: string): void {
    f.lastId = id;
    const envelope = decodeEntry(id, ['e', payload]);
    if (typeof envelope === 'string') {
      this.droppedEntries++;
      this.logger.warn(`Dropped entry ${id} of ${f.keys.events}: ${envelope}.`);
      return;
    }
    this.handEnvelope(f, envelope);
  }

  private handEnvelope(f: Followed, envelope: SseEnvelope): void {
    try {
      this.deliver(envelope, f.value);
    } catch (err) {
      this.logger.error(`Delivering ${envelope.id} of ${f.value} failed: ${(err as Error).message}`);
    }
  }

  private reportGap(f: Followed, next: string, previous: string | undefined): void {
    this.gaps++;
    this.logger.error(
      `Events of ${f.value} between ${f.lastId || 'the start'} and ${next} (which follows ${previous || 'nothing'}) were gone from ` +
        `${f.keys.events} before this node read them; its clients holding that value missed them.`,
    );
  }
}
