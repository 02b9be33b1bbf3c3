import { Logger } from '@nestjs/common';
import type { SseEnvelope } from '@nest-sse/core';
import type { Client, RedisConnections } from './redis.connections.js';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import { compareStreamIds, decodeEntry, entriesOf, lossOf, previousOf, type RedisLoss } from './redis-envelope.js';
import type { RedisKeys } from './redis.keys.js';
import { newFollowed, reached, release, waitThrough, wake, type Followed } from './redis.followed.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { MARK_LOST, POSITION, type ScriptClient } from './redis.scripts.js';

/** How long a value no local connection holds any more stays followed (a client that reconnects finds it still there). */
export const DEFAULT_LINGER_MS = 5_000;

/**
 * Routed delivery, the reading side: this node follows only the routed values its own connections
 * hold. Following a value is a sharded subscription to its live channel (SSUBSCRIBE, so on a
 * Cluster only the master that owns the value's slot carries it), with its Stream as the history
 * behind it. Every live message names the entry before it: a node that sees a jump (its
 * subscriber connection dropped, a publish raced its subscription) reads what it missed from the
 * Stream before it delivers on, so each value's events reach this node once, in order.
 *
 * Events that are gone from the Stream before this node read them are never skipped silently:
 * the connections holding the value are told (`lost`, which sends them `sse.reset`). They are
 * gone when trimmed before this node read them, or lost with a master that failed over before
 * its replica received them: the chain then goes on from an older entry than the last one this
 * node delivered. A node that sees that adds a loss marker to the Stream (as does a publisher
 * whose last event is gone, see PUBLISH), so that the other nodes following the value, and
 * clients resuming across the loss, are told too.
 *
 * On a Cluster, each time the client's sharded subscribers move (a master failed over, slots
 * moved) every value's subscription is renewed and the value catches up from its Stream: what
 * the new master took before the subscription reached it is delivered then, not at the next event.
 */
export class RedisRouteFollower {
  /** Times entries of a followed value were gone from its Stream before this node read them. */
  gaps = 0;
  /** Entries delivered from a Stream rather than live: what a dropped connection or a race made this node miss. */
  filled = 0;
  droppedEntries = 0;
  /** Times the connections holding a value were told that some of its events were lost. */
  losses = 0;
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
    /** Events of `value` were lost before this node delivered them: its connections holding it are told. */
    private readonly lost: (value: string) => void,
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
    if (f === undefined || this.connections.closed || reached(f, id)) return Promise.resolve();
    return waitThrough(f, id, timeout, () =>
      this.logger.warn(
        `This node is more than ${timeout} ms behind ${id} of ${f.value}; a resuming client may see some events twice.`,
      ),
    );
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
      release(f, new RedisUnavailableError('RedisTransport closed.'));
    }
    this.followed.clear();
    this.byChannel.clear();
  }

  private follow(value: string): Followed {
    const f = newFollowed(value, this.keys.route(value));
    this.followed.set(value, f);
    this.byChannel.set(f.keys.live, f);
    void this.subscribe(f);
    return f;
  }

  private unfollow(f: Followed): void {
    if (this.followed.get(f.value) !== f) return;
    this.followed.delete(f.value);
    this.byChannel.delete(f.keys.live);
    release(f, new RedisUnavailableError(`Stopped following ${f.value} before Redis answered.`));
    this.subscriber?.sunsubscribe(f.keys.live).catch(() => undefined);
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
        const position = String(await POSITION.run(this.connections.commands as ScriptClient, [f.keys.events, f.keys.last], []));
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
          // a Cluster's sharded subscribers were replaced or moved (a failover): renew and catch up
          subscriber.on('subscribersReady', () => this.resync(true));
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
      if (next.payload.startsWith(LOSS_PREFIX)) {
        f.lastId = next.id;
        const [through = '', after = ''] = next.payload.slice(LOSS_PREFIX.length).split(' ');
        this.marked(f, { after, through });
      } else this.hand(f, next.id, next.payload);
    }
    wake(f);
  }

  /**
   * Messages may have been missed (the subscriber reconnected, or on a Cluster its sharded
   * subscribers moved: `renew`, the subscriptions are renewed first): every value catches up
   * from its Stream.
   */
  private resync(renew = false): void {
    for (const f of this.followed.values()) {
      // still subscribing: its position is read once the subscription is in place
      if (f.lastId === undefined) continue;
      if (renew) f.renew = true;
      if (f.busy) {
        f.again = true;
        continue;
      }
      f.busy = true;
      void this.fill(f);
    }
  }

  /**
   * Subscribes again, on whichever master owns the value's slot now, and waits for the reply:
   * anything published after it arrives live, anything before is read from the Stream next.
   * Unsubscribing first keeps the client's list of channels to renew from growing.
   */
  private async renew(f: Followed): Promise<void> {
    const subscriber = this.subscriber;
    if (subscriber === undefined) return;
    subscriber.sunsubscribe(f.keys.live).catch(() => undefined);
    await subscriber.ssubscribe(f.keys.live);
    f.renew = false;
  }

  /**
   * Reads the Stream after the last entry delivered and delivers it, then the held messages. A
   * chain that goes on from an older entry (a fork) is read again from that entry.
   */
  private async fill(f: Followed): Promise<void> {
    const batch = this.options.readBatchSize;
    for (let attempt = 0; !this.connections.closed && this.followed.get(f.value) === f; attempt++) {
      try {
        if (f.renew) await this.renew(f);
        read: for (;;) {
          const start = f.lastId === '' ? '-' : `(${f.lastId}`;
          const entries = entriesOf(await this.connections.commands!.call('XRANGE', f.keys.events, start, '+', 'COUNT', batch));
          for (const [id, fields] of entries) {
            const previous = previousOf(fields);
            if (previous !== undefined && previous !== f.lastId && this.broken(f, id, previous)) continue read;
            f.lastId = id;
            this.filled++;
            const loss = lossOf(fields);
            if (loss !== undefined) {
              this.marked(f, loss);
              continue;
            }
            const envelope = decodeEntry(id, fields);
            if (typeof envelope === 'string') {
              this.droppedEntries++;
              this.logger.warn(`Dropped Stream entry ${id} of ${f.keys.events}: ${envelope}.`);
            } else this.handEnvelope(f, envelope);
          }
          if (entries.length < batch) break;
        }
        if (f.again) {
          f.again = false;
          continue;
        }
        f.busy = false;
        this.drain(f);
        return;
      } catch (err) {
        if (this.connections.closed) return;
        if (attempt === 0) this.logger.warn(`Catching up on ${f.value} failed (${(err as Error).message}); trying again.`);
        await this.connections.whenReady(this.connections.commands!, Math.min(1000, this.options.maxReconnectDelay));
        // a Cluster client stays ready while one master is down: back off rather than spin
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(this.options.maxReconnectDelay, 50 * 2 ** Math.min(attempt, 5))),
        );
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

  /**
   * The entry `next` names `previous` before it, not the last entry delivered: some are gone. When
   * the chain goes on from an older entry (or starts again), entries this node delivered are gone
   * too: it marks the loss for the other nodes and reads on from that entry (true). Either way
   * the connections holding the value are told.
   */
  private broken(f: Followed, next: string, previous: string): boolean {
    this.gaps++;
    const delivered = f.lastId!;
    const fork = delivered !== '' && (previous === '' || compareStreamIds(previous, delivered) < 0);
    if (!fork) {
      this.logger.error(
        `Events of ${f.value} between ${delivered || 'the start'} and ${next} (which follows ${previous}) were gone from ` +
          `${f.keys.events} before this node read them; its clients holding that value are told to reset.`,
      );
      this.lose(f, previous);
      return false;
    }
    this.logger.error(
      `Events of ${f.value} after ${previous || 'the start'}, up to ${delivered} which this node delivered, are gone from ` +
        `${f.keys.events} (a failover lost what the old master had acknowledged, or the Stream was recreated); ` +
        `its clients holding that value are told to reset.`,
    );
    this.lose(f, previous);
    MARK_LOST.run(
      this.connections.commands as ScriptClient,
      [f.keys.events, f.keys.live, f.keys.last],
      [previous, delivered, this.options.historySize, this.options.historyMaxAge],
    ).catch((err: Error) => this.logger.warn(`Could not mark the loss in ${f.keys.events}: ${err.message}.`));
    f.lastId = previous;
    // entries waited for on the lost branch will not come: the resuming streams waiting go on
    for (const waiter of f.waiters.splice(0)) waiter.resolve();
    return true;
  }

  /** A loss marker: unless this node told its clients of that loss already, it tells them now. */
  private marked(f: Followed, loss: RedisLoss): void {
    if (loss.after === f.lostAfter) return;
    this.logger.error(
      `Events of ${f.value} after ${loss.after || 'the start'} (at least up to ${loss.through}) were lost from ${f.keys.events} ` +
        `(a failover lost what the old master had acknowledged); its clients holding that value are told to reset.`,
    );
    this.lose(f, loss.after);
  }

  private lose(f: Followed, after: string): void {
    f.lostAfter = after;
    this.losses++;
    try {
      this.lost(f.value);
    } catch (err) {
      this.logger.error(`Telling the clients of ${f.value} of lost events failed: ${(err as Error).message}`);
    }
  }
}

/** How a loss marker's payload starts on the shard channel (an event's payload is JSON). */
const LOSS_PREFIX = 'lost ';
