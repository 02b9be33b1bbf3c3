import type { SseEnvelopeDraft } from '@nest-sse/core';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import { isReplyError, type Client, type RedisConnections } from './redis.connections.js';
import { refusedError, timedOutError } from './redis-failure.js';
import type { RedisKeys, RouteKeys } from './redis.keys.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { PUBLISH, isNoScript, type ScriptClient } from './redis.scripts.js';

/**
 * Broadcasts one node keeps on the wire at once. A bigger pipeline would not go faster, and
 * it could add entries faster than the nodes' readers take them, past what the Stream keeps.
 */
const MAX_IN_FLIGHT = 256;
/** Broadcasts one script run appends at most. */
const MAX_BATCH = 64;
/** Replies Redis sends while it is starting or busy: the command is worth sending again. */
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;

/** One broadcast on its way into the Stream. */
interface Outgoing {
  /** This transport's own order of publishes; also the key of the resend guard. */
  seq: number;
  payload: string;
  eventIdKey: string | undefined;
  resolve(id: string): void;
  reject(err: Error): void;
  /** When it gives up waiting for Redis (ms since the epoch). */
  deadline: number;
  state: 'waiting' | 'sent' | 'done';
  /** Sent once and its reply lost with the connection: Redis may have applied it. */
  maybeApplied?: boolean;
}

/**
 * Appends this node's broadcasts to the Stream: batched (the broadcasts of one turn in one script
 * run), in order, each applied once, held while Redis is away and given up after `publishTimeout`.
 *
 * Order: broadcasts go out on one connection, oldest first, and each names the one sent just
 * before it; the script applies a broadcast only if that one was applied. So when one fails
 * (a dropped connection, NOSCRIPT after a restart, Redis loading), the ones behind it fail too
 * instead of overtaking it. Sending then pauses until nothing is in flight, and everything that
 * failed goes again, in order.
 */
/**
 * The seq of the last broadcast handed to a publisher: one counter for every publisher of the
 * process, so that a later broadcast always has a higher seq than any before it (what PUBLISH's
 * STALE check relies on), and a publisher made again for a routed value (after it was closed as
 * idle) never reuses a seq its resend guard may still hold.
 */
let lastSeq = 0;

export class RedisPublisher {
  private readonly waiting: Outgoing[] = [];
  /** Sent, not yet confirmed; a Set keeps send order and removes in O(1). */
  private readonly sent = new Set<Outgoing>();
  private retryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private paused = false;
  private flushQueued = false;
  private readonly queuedFlush = (): void => {
    this.flushQueued = false;
    this.flush();
  };
  private reloadScript = false;
  private lastSent: Outgoing | undefined;
  /** The Stream appended to, this node's recent publishes to it (the resend guard), and the shard channel ('' for none). */
  private readonly events: string;
  private publishedKey = '';
  private readonly live: string;
  private readonly maxLength: number;
  /**
   * Routed: the last id this node was given in the value's Stream. Each batch names it, so that
   * the script notices when a failover lost it and marks the loss (see PUBLISH).
   */
  private lastId = '';

  /**
   * Publishes to the prefix's Stream, or with `route` to that routed value's Stream and shard
   * channel (see `RedisKeys.route`).
   */
  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedRedisOptions,
    private readonly route?: RouteKeys,
  ) {
    this.events = route?.events ?? keys.events;
    this.live = route?.live ?? '';
    // a routed value's Stream is its history, not a delivery buffer (see MIN_RETAINED): no floor
    this.maxLength = route === undefined ? options.retained : options.historySize;
  }

  /** True when nothing is waiting or in flight. */
  get idle(): boolean {
    return this.waiting.length === 0 && this.sent.size === 0;
  }

  /** Broadcasts held on this node, not yet sent. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Broadcasts sent and not yet confirmed. */
  get unconfirmed(): number {
    return this.sent.size;
  }

  /** Makes the publisher ready; `nodeId` names this node's resend guard. */
  start(nodeId: string): void {
    this.publishedKey = this.route?.published(nodeId) ?? this.keys.published(nodeId);
    this.started = true;
  }

  /**
   * One timer for every pending broadcast's deadline rather than one per broadcast, running only
   * while some broadcast is pending: a node keeps a publisher per routed value it broadcast to
   * lately, and idle ones must cost nothing.
   */
  private armSweep(): void {
    if (this.sweepTimer !== undefined || !this.started) return;
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(250, this.options.publishTimeout / 4));
    this.sweepTimer.unref();
  }

  publish(draft: SseEnvelopeDraft): Promise<string> {
    if (this.waiting.length >= this.options.maxPendingPublishes) {
      return Promise.reject(
        new RedisUnavailableError(
          `${this.options.maxPendingPublishes} broadcasts are already waiting for Redis (maxPendingPublishes); this one was not accepted and will not be delivered.`,
        ),
      );
    }
    return new Promise<string>((resolve, reject) => {
      const item: Outgoing = {
        seq: ++lastSeq,
        payload: JSON.stringify(draft),
        // a routed value's clients resume by cursor: no publisher id to look up (and no key outside its slot)
        eventIdKey: draft.eventId === undefined || this.route !== undefined ? undefined : this.keys.eventId(draft.eventId),
        resolve,
        reject,
        deadline: Date.now() + this.options.publishTimeout,
        state: 'waiting',
      };
      this.waiting.push(item);
      this.armSweep();
      // Broadcasts made in the same turn go out together, in one script run.
      if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(this.queuedFlush);
      }
    });
  }

  /**
   * Stops: broadcasts already sent get a moment to be confirmed; their callers, and those of
   * broadcasts still waiting, are then told either way.
   */
  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.sent.size > 0) await this.quiet(1000);
    const unconfirmed = [...this.sent];
    this.sent.clear();
    for (const item of unconfirmed) {
      this.settle(item);
      item.reject(
        new RedisUnavailableError('RedisTransport closed before Redis confirmed this broadcast; it may or may not be delivered.'),
      );
    }
    for (const item of this.waiting.splice(0)) {
      this.settle(item);
      item.reject(
        new RedisUnavailableError(
          item.maybeApplied
            ? 'RedisTransport closed before Redis confirmed this broadcast; it may or may not be delivered.'
            : 'RedisTransport closed before this broadcast reached Redis; it will not be delivered.',
        ),
      );
    }
  }

  /** Sends every waiting broadcast, oldest first, in batches, if the command connection is ready. */
  flush(): void {
    const commands = this.connections.commands;
    if (this.connections.closed || this.paused || commands === undefined || commands.status !== 'ready') return;
    while (this.waiting.length > 0 && this.sent.size < MAX_IN_FLIGHT) {
      const batch = this.waiting.splice(0, Math.min(MAX_BATCH, MAX_IN_FLIGHT - this.sent.size));
      const previous = this.lastSent?.state === 'sent' ? this.lastSent.seq : 0;
      for (const item of batch) {
        item.state = 'sent';
        this.sent.add(item);
      }
      this.lastSent = batch[batch.length - 1];
      this.send(commands, batch, previous);
    }
  }

  /** Runs the publish script for a batch; `previous` is the seq of the one sent before it, if still unconfirmed. */
  private send(commands: Client, batch: Outgoing[], previous: number): void {
    // The oldest seq still unconfirmed: the batch is in `sent` already, and anything waiting was
    // published after everything sent (a failure pauses sending until `sent` is empty).
    const lowest = first(this.sent)!.seq;
    // a routed value's Stream expires with its history; its last id is kept apart (see PUBLISH)
    const keys = this.route === undefined ? [this.events, this.publishedKey] : [this.events, this.publishedKey, this.route.last];
    const args: Array<string | number> = [
      lowest,
      this.maxLength,
      this.options.historyMaxAge,
      this.options.guardTtl,
      previous,
      batch.length,
      this.live,
      this.lastId,
    ];
    for (const item of batch) {
      let keyIndex = 0;
      if (item.eventIdKey !== undefined) {
        keys.push(item.eventIdKey);
        keyIndex = keys.length;
      }
      args.push(item.seq, item.payload, keyIndex);
    }
    PUBLISH.run(commands as ScriptClient, keys, args, false).then(
      (ids) => {
        const list = ids as unknown[];
        if (this.route !== undefined && list.length > 0) this.lastId = String(list[list.length - 1]);
        batch.forEach((item, i) => {
          if (item.state !== 'sent') return;
          this.sent.delete(item);
          this.settle(item);
          item.resolve(String(list[i]));
        });
        this.connections.lastFailure = undefined;
        if (this.paused) this.resumeIfSettled();
        else if (this.waiting.length > 0) this.flush();
      },
      (err: Error) => {
        this.connections.lastFailure = err;
        const refused = isReplyError(err) && !TRANSIENT.test(err.message) && !isNoScript(err) && !err.message.startsWith('ORDER');
        for (const item of batch) {
          if (item.state !== 'sent') continue;
          this.sent.delete(item);
          if (refused) {
            this.settle(item);
            item.reject(refusedError(err));
          } else {
            // Sent again once nothing is in flight. If Redis did apply it (the reply was lost), the
            // resend guard returns the id it was given instead of adding it twice.
            if (!isReplyError(err)) item.maybeApplied = true;
            item.state = 'waiting';
            insertBySeq(this.waiting, item);
            this.paused = true;
          }
        }
        if (!refused && isNoScript(err)) this.reloadScript = true;
        this.resumeIfSettled();
      },
    );
  }

  /** Ends a pause once every broadcast in flight has settled: loads the script if Redis lost it, then sends. */
  private resumeIfSettled(): void {
    if (!this.paused || this.sent.size > 0 || this.connections.closed) return;
    const commands = this.connections.commands!;
    if (this.reloadScript) {
      this.reloadScript = false;
      PUBLISH.load(commands as ScriptClient).then(
        () => this.resume(false),
        () => this.resume(true),
      );
    } else {
      this.resume(true);
    }
  }

  /**
   * Sends again: at once after the script was loaded, otherwise on 'ready' or after a short wait.
   * Never straight away after a failure: a connection that has died but still reads 'ready'
   * rejects at once, and resending at once would spin without letting ioredis see the close.
   */
  private resume(later: boolean): void {
    this.paused = false;
    if (later) this.retrySoon();
    else this.flush();
  }

  private retrySoon(): void {
    if (this.retryTimer !== undefined || this.connections.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, 100);
    this.retryTimer.unref();
  }

  /** Gives up on broadcasts past their deadline; both lists are in deadline order, oldest first. */
  private sweep(): void {
    const now = Date.now();
    while (this.waiting.length > 0 && this.waiting[0].deadline <= now) this.giveUp(this.waiting[0]);
    for (const item of this.sent) {
      if (item.deadline > now) break;
      this.giveUp(item);
    }
    if (this.idle && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  private giveUp(item: Outgoing): void {
    const wasSent = item.state === 'sent';
    if (wasSent) this.sent.delete(item);
    else remove(this.waiting, item);
    this.settle(item);
    this.resumeIfSettled();
    item.reject(
      timedOutError(
        wasSent || item.maybeApplied
          ? `Redis did not confirm this broadcast within ${this.options.publishTimeout} ms (publishTimeout); it may or may not be delivered.`
          : `Redis was unreachable for ${this.options.publishTimeout} ms (publishTimeout); this broadcast was not sent and will not be delivered.`,
        this.connections.lastFailure,
      ),
    );
  }

  private settle(item: Outgoing): void {
    item.state = 'done';
  }

  /** Waits until no broadcast is in flight, at most `timeout` ms. */
  private async quiet(timeout: number): Promise<void> {
    const deadline = Date.now() + timeout;
    while (this.sent.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item;
  return undefined;
}

function remove<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index !== -1) list.splice(index, 1);
}

function insertBySeq(list: Outgoing[], item: Outgoing): void {
  let i = list.length;
  while (i > 0 && list[i - 1].seq > item.seq) i--;
  list.splice(i, 0, item);
}
