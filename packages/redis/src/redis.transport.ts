import { Logger } from '@nestjs/common';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import {
  SseConfigurationError,
  type SseClusterStats,
  type SseEnvelope,
  type SseEnvelopeDraft,
  type SseNodeStats,
  type SseReplayResult,
  type SseTransport,
  type SseTransportContext,
} from '@nest-sse/core';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import { compareStreamIds, decodeEntry, entriesOf, isStreamId, previousOf, xreadEntries } from './redis-envelope.js';
import { connectOrExplain } from './redis-connect-errors.js';
import { validateRedisTransportOptions } from './redis-options.validation.js';
import { RedisKeys } from './redis.keys.js';
import { refusedError, timedOutError } from './redis-failure.js';
import { POSITION, PUBLISH, READ_STATS, REPLAY, WRITE_STATS, isNoScript, type ScriptClient } from './redis.scripts.js';
import type { RedisTransportOptions } from './redis-transport-options.interface.js';

type Client = Redis | Cluster;

const DEFAULTS = {
  url: 'redis://localhost:6379',
  prefix: 'nest_sse',
  cleanupInterval: 60,
  historySize: 10_000,
  historyMaxAge: 5 * 60_000,
  publishTimeout: 10_000,
  maxPendingPublishes: 10_000,
  maxReconnectDelay: 2_000,
  connectTimeout: 10_000,
  readBatchSize: 512,
};

/**
 * Entries the Stream keeps at least, whatever historySize says: it is also every node's delivery
 * buffer, and a node that reads a little behind must still find what it has not read.
 */
const MIN_RETAINED = 1000;
/**
 * Broadcasts one node keeps on the wire at once. A bigger pipeline would not go faster, and
 * it could add entries faster than the nodes' readers take them, past what the Stream keeps.
 */
const MAX_IN_FLIGHT = 256;
/** Broadcasts one script run appends at most. */
const MAX_BATCH = 64;
/** How long one XREAD blocks before it returns empty and is sent again. */
const BLOCK_MS = 5_000;
/** Replies Redis sends while it is starting or busy: the command is worth sending again. */
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;

/** A replay's answer, and the last Stream id it read (all of the Stream, up to then). */
interface Replay {
  result: SseReplayResult;
  through?: string;
}

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
 * The distributed backend: every node appends its broadcasts to one capped Redis Stream per
 * prefix and reads that Stream from where it left off, so each node gets every event once, in
 * one order, with the Stream id as its event id. The same Stream is the shared history that
 * `Last-Event-ID` replays from, on any node. Each node keeps its connection counts under an
 * expiring lease, so the stats route can show the whole cluster.
 *
 * @example
 * SseModule.forRoot(new RedisTransport({ url: process.env.REDIS_URL, prefix: 'my_app_sse' }))
 * @example
 * // a client the app already has: the transport never closes it
 * SseModule.forRoot(new RedisTransport({ client: redis }))
 * @publicApi
 */
export class RedisTransport implements SseTransport {
  readonly backend = 'redis';
  readonly keys: RedisKeys;
  private readonly logger = new Logger('RedisTransport');
  private readonly options: typeof DEFAULTS & RedisTransportOptions;
  private readonly leaseMs: number;
  private readonly statsEvery: number;

  private context: SseTransportContext | undefined;
  private commands: Client | undefined;
  private reader: Client | undefined;
  private readonly owned: Client[] = [];
  private readonly detach: Array<() => void> = [];
  private closed = false;
  private readLoop: Promise<void> | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastId = '0-0';

  private seq = 0;
  private readonly waiting: Outgoing[] = [];
  /** Sent, not yet confirmed; a Set keeps send order and removes in O(1). */
  private readonly sent = new Set<Outgoing>();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly replays = new Map<string, Promise<Replay>>();
  private outageSince: number | undefined;
  /** The last error Redis (or the connection to it) gave, until a publish succeeds: says why a broadcast timed out. */
  private lastFailure: unknown;
  private paused = false;
  private flushQueued = false;
  private readonly queuedFlush = (): void => {
    this.flushQueued = false;
    this.flush();
  };
  private reloadScript = false;
  private lastSent: Outgoing | undefined;
  private readonly waiters = new Set<{ id: string; resolve: () => void }>();
  private lastStats = '';
  private lastStatsAt = 0;
  /** Times this node found entries missing between two it read (see `reportGap`). */
  private gaps = 0;
  /** This node's recent publishes (the resend guard), and what each publish script run keeps. */
  private publishedKey = '';
  private readonly retained: number;
  private readonly guardTtl: number;
  private outages = 0;
  private droppedEntries = 0;

  constructor(options: RedisTransportOptions = {}) {
    validateRedisTransportOptions(options);
    const merged = { ...DEFAULTS };
    for (const [key, value] of Object.entries(options)) if (value !== undefined) (merged as any)[key] = value;
    this.options = merged;
    this.keys = new RedisKeys(merged.prefix);
    this.retained = Math.max(merged.historySize, MIN_RETAINED);
    this.guardTtl = Math.max(60_000, merged.publishTimeout * 6);
    this.leaseMs = Math.round(merged.cleanupInterval * 1000);
    this.statsEvery = options.statsInterval ?? Math.min(1000, Math.floor(this.leaseMs / 3));
  }

  async start(context: SseTransportContext): Promise<void> {
    if (this.context !== undefined)
      throw new SseConfigurationError('A RedisTransport serves one application: make one per SseModule.');
    this.context = context;
    this.publishedKey = this.keys.published(context.nodeId);
    try {
      const commands = this.options.client ?? this.own(new Redis(this.options.url, this.connectionOptions('commands')));
      this.commands = commands;
      this.watch(commands, 'commands');
      await this.connect(commands);
      const reader = this.own(duplicate(commands, this.connectionOptions('reader')));
      this.reader = reader;
      this.watch(reader, 'reader');
      await this.connect(reader);
      this.lastId = String((await POSITION.run(commands as ScriptClient, [this.keys.events], [])) || '0-0');
      await this.writeStats();
    } catch (err) {
      await this.shutdown();
      throw err instanceof RedisUnavailableError || err instanceof SseConfigurationError
        ? err
        : new RedisUnavailableError(`RedisTransport could not start on ${this.where()}: ${(err as Error).message}`);
    }
    this.readLoop = this.read();
    this.statsTimer = setInterval(() => void this.writeStats(), this.statsEvery);
    this.statsTimer.unref();
    // One timer for every pending broadcast's deadline rather than one per broadcast.
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(250, this.options.publishTimeout / 4));
    this.sweepTimer.unref();
  }

  publish(draft: SseEnvelopeDraft): Promise<string> {
    if (this.context === undefined || this.closed) {
      return Promise.reject(
        new RedisUnavailableError(
          'RedisTransport is not running: publish after the application has bootstrapped and before it closes.',
        ),
      );
    }
    if (this.waiting.length >= this.options.maxPendingPublishes) {
      return Promise.reject(
        new RedisUnavailableError(
          `${this.options.maxPendingPublishes} broadcasts are already waiting for Redis (maxPendingPublishes); this one was not accepted and will not be delivered.`,
        ),
      );
    }
    return new Promise<string>((resolve, reject) => {
      const item: Outgoing = {
        seq: ++this.seq,
        payload: JSON.stringify(draft),
        eventIdKey: draft.eventId === undefined ? undefined : this.keys.eventId(draft.eventId),
        resolve,
        reject,
        deadline: Date.now() + this.options.publishTimeout,
        state: 'waiting',
      };
      this.waiting.push(item);
      // Broadcasts made in the same turn go out together, in one script run.
      if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(this.queuedFlush);
      }
    });
  }

  async replay(afterId: string, limit: number): Promise<SseReplayResult> {
    // The caller's stream was registered before this call: what this node delivered until now did
    // not reach it, so the history it gets must reach at least that far.
    const delivered = this.lastId;
    // Clients reconnecting together mostly ask for the same id: one script run serves them all,
    // as long as it read the Stream late enough for each of them.
    const key = `${limit}\n${afterId}`;
    let running = this.replays.get(key);
    if (running === undefined) {
      running = this.runReplay(afterId, limit).finally(() => this.replays.delete(key));
      this.replays.set(key, running);
    }
    const shared = await running;
    if (shared.through === undefined || compareStreamIds(shared.through, delivered) >= 0) return shared.result;
    // It read the Stream before this node delivered what this caller missed: read again, for it alone.
    return (await this.runReplay(afterId, limit)).result;
  }

  /** Orders two Stream ids; an id that is not one sorts after everything. */
  compareIds(a: string, b: string): number {
    if (!isStreamId(a)) return 1;
    if (!isStreamId(b)) return -1;
    return compareStreamIds(a, b);
  }

  /**
   * This node's view of Redis, for `SseMetricsModule` (`nest_sse_transport{metric}` and
   * `nest_sse_transport_up`): read at scrape time, nothing is counted on the hot path.
   */
  metrics(): Record<string, number> {
    const ready = (client: Client | undefined) => (client?.status === 'ready' ? 1 : 0);
    return {
      connected: ready(this.commands) && ready(this.reader),
      // broadcasts go out only while this connection is ready; until then they wait (pending_publishes)
      commands_connected: ready(this.commands),
      outages: this.outages,
      outage_ms: this.outageSince === undefined ? 0 : Date.now() - this.outageSince,
      pending_publishes: this.waiting.length,
      unconfirmed_publishes: this.sent.size,
      dropped_entries: this.droppedEntries,
      gaps: this.gaps,
    };
  }

  async clusterStats(): Promise<SseClusterStats> {
    const local = this.context?.localStats();
    const nodes: SseNodeStats[] = [];
    try {
      if (this.commands === undefined || this.commands.status !== 'ready')
        throw new Error(`the connection is ${this.commands?.status ?? 'not open'}`);
      const reply = (await withTimeout(
        READ_STATS.run(this.commands as ScriptClient, [this.keys.nodes, this.keys.stats], []),
        Math.min(this.options.publishTimeout, 2000),
        'reading the stats',
      )) as string[];
      for (let i = 0; i + 1 < reply.length; i += 2) {
        if (reply[i] === local?.node) continue;
        const stats = parseStats(reply[i], reply[i + 1]);
        if (stats !== undefined) nodes.push(stats);
      }
    } catch (err) {
      this.logger.warn(`Cluster stats unavailable (${(err as Error).message}); reporting this node only.`);
    }
    if (local !== undefined) nodes.unshift(local);
    return { backend: this.backend, nodes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Broadcasts already sent get a moment to be confirmed; their callers are then told either way.
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
    const context = this.context;
    if (context !== undefined && this.commands?.status === 'ready') {
      await withTimeout(
        WRITE_STATS.run(
          this.commands as ScriptClient,
          [this.keys.nodes, this.keys.stats],
          [context.nodeId, '', this.leaseMs, this.keyTtl()],
        ),
        1000,
        'leaving the stats',
      ).catch(() => undefined);
    }
    await this.shutdown();
  }

  /** Closes the connections the transport made (never the app's) and ends the reader. */
  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
    for (const undo of this.detach.splice(0)) undo();
    // the reader is always one the transport made (a duplicate)
    this.reader?.disconnect();
    await this.readLoop;
    await Promise.all(
      this.owned.splice(0).map(async (client) => {
        if (client.status !== 'end') {
          const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
          if (client.status === 'ready') await withTimeout(client.quit(), 1000, 'quit').catch(() => client.disconnect());
          else client.disconnect();
          // resolve only once the socket is closed, so that nothing is left open after close()
          if ((client.status as string) !== 'end') await withTimeout(ended, 1000, 'closing').catch(() => undefined);
        }
      }),
    );
  }

  private own<C extends Client>(client: C): C {
    this.owned.push(client);
    return client;
  }

  private connectionOptions(role: 'commands' | 'reader'): RedisOptions {
    const cap = this.options.maxReconnectDelay;
    return {
      ...this.options.redisOptions,
      lazyConnect: true,
      // The transport keeps its own queue of broadcasts and resends them itself, in order, with
      // a guard against applying one twice; ioredis must not also queue or resend them.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      replyMapping: 'legacy',
      connectionName: `nest-sse:${role}`,
      retryStrategy: (times: number) => Math.min(cap, 50 * 2 ** Math.min(times, 16)) + Math.floor(Math.random() * 50),
    } as RedisOptions;
  }

  /** Reacts to a connection's state: flush held broadcasts when ready, log an outage once. */
  private watch(client: Client, role: string): void {
    const onReady = () => {
      if (this.outageSince !== undefined) {
        this.logger.log(`Redis is back after ${Date.now() - this.outageSince} ms; resuming.`);
        this.outageSince = undefined;
      }
      if (role === 'commands') this.flush();
    };
    const onError = (err: Error) => {
      if (this.closed) return;
      this.lastFailure = err;
      if (this.outageSince === undefined) {
        this.outageSince = Date.now();
        this.outages++;
        this.logger.warn(
          `Lost Redis (${role} connection: ${err.message}); reconnecting, broadcasts wait up to ${this.options.publishTimeout} ms.`,
        );
      }
    };
    const onClose = () => {
      if (!this.closed && this.outageSince === undefined) {
        this.outageSince = Date.now();
        this.outages++;
        this.logger.warn(`Redis ${role} connection closed; reconnecting.`);
      }
    };
    client.on('ready', onReady);
    client.on('close', onClose);
    // An 'error' listener on a client we made keeps ioredis from printing every failed attempt
    // (it stays until the client is gone); the app's own client keeps the handling the app gave it.
    if (this.owned.includes(client)) client.on('error', onError);
    this.detach.push(() => {
      client.off('ready', onReady);
      client.off('close', onClose);
    });
  }

  /** Connects a client (if it is not yet) and waits until it is ready, at most `connectTimeout`. */
  private connect(client: Client): Promise<void> {
    return connectOrExplain(client, this.options.connectTimeout, this.where());
  }

  /** Resolves true once `client` is ready, false after `timeout` ms or on close. */
  private whenReady(client: Client, timeout: number): Promise<boolean> {
    if (client.status === 'ready') return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        resolve(value);
      };
      const onReady = () => done(true);
      const onEnd = () => done(false);
      const timer = setTimeout(() => done(false), timeout);
      client.once('ready', onReady);
      client.once('end', onEnd);
    });
  }

  // ---- publishing -------------------------------------------------------------------------
  //
  // Order: broadcasts go out on one connection, oldest first, and each names the one sent just
  // before it; the script applies a broadcast only if that one was applied. So when one fails
  // (a dropped connection, NOSCRIPT after a restart, Redis loading), the ones behind it fail too
  // instead of overtaking it. Sending then pauses until nothing is in flight, and everything that
  // failed goes again, in order.

  /** Sends every waiting broadcast, oldest first, in batches, if the command connection is ready. */
  private flush(): void {
    const commands = this.commands;
    if (this.closed || this.paused || commands === undefined || commands.status !== 'ready') return;
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
    const keys = [this.keys.events, this.publishedKey];
    const args: Array<string | number> = [
      lowest,
      this.retained,
      this.options.historyMaxAge,
      this.guardTtl,
      previous,
      batch.length,
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
        batch.forEach((item, i) => {
          if (item.state !== 'sent') return;
          this.sent.delete(item);
          this.settle(item);
          item.resolve(String(list[i]));
        });
        this.lastFailure = undefined;
        if (this.paused) this.resumeIfSettled();
        else if (this.waiting.length > 0) this.flush();
      },
      (err: Error) => {
        this.lastFailure = err;
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
    if (!this.paused || this.sent.size > 0 || this.closed) return;
    const commands = this.commands!;
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
    if (this.retryTimer !== undefined || this.closed) return;
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
        this.lastFailure,
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

  // ---- delivery ---------------------------------------------------------------------------

  /** Reads the Stream from the last id seen, for as long as the transport runs. */
  private async read(): Promise<void> {
    const reader = this.reader!;
    let failures = 0;
    while (!this.closed) {
      if (reader.status !== 'ready') {
        await this.whenReady(reader, 1000);
        continue;
      }
      try {
        const reply = await reader.call(
          'XREAD',
          'COUNT',
          this.options.readBatchSize,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.keys.events,
          this.lastId,
        );
        failures = 0;
        this.handle(xreadEntries(reply));
      } catch (err) {
        if (this.closed) break;
        if (isReplyError(err)) this.logger.error(`Reading ${this.keys.events} failed: ${(err as Error).message}`);
        // Never spin: a failure that leaves the connection 'ready' waits before the next try.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(this.options.maxReconnectDelay, 25 * 2 ** Math.min(failures++, 10))),
        );
      }
    }
  }

  private handle(entries: Array<[string, unknown]>): void {
    const context = this.context!;
    for (const [id, fields] of entries) {
      const previous = previousOf(fields);
      if (previous !== undefined && previous !== this.lastId && this.lastId !== '0-0') this.reportGap(this.lastId, id, previous);
      this.lastId = id;
      const envelope = decodeEntry(id, fields);
      if (typeof envelope === 'string') {
        this.droppedEntries++;
        this.logger.warn(`Dropped Stream entry ${id} of ${this.keys.events}: ${envelope}.`);
        continue;
      }
      try {
        context.deliver(envelope);
      } catch (err) {
        this.logger.error(`Delivering ${id} failed: ${(err as Error).message}`);
      }
    }
    if (this.waiters.size > 0) {
      for (const waiter of this.waiters) {
        if (compareStreamIds(this.lastId, waiter.id) >= 0) {
          this.waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  }

  /** Resolves once this node's reader has delivered `id`, or after publishTimeout (with a warning). */
  private readThrough(id: string): Promise<void> {
    if (compareStreamIds(this.lastId, id) >= 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const waiter = { id, resolve: done };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        this.logger.warn(
          `This node's reader is more than ${this.options.publishTimeout} ms behind ${id}; a resuming client may see some events twice.`,
        );
        resolve();
      }, this.options.publishTimeout);
      timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** Every entry names the one before it: a different name means this node did not read some. */
  private reportGap(seen: string, next: string, previous: string): void {
    this.gaps++;
    this.logger.error(
      previous === ''
        ? `The Stream ${this.keys.events} was recreated (Redis lost its data?): events after ${seen} may never have reached this node's clients.`
        : `Events between ${seen} and ${next} were trimmed from ${this.keys.events} before this node read them; its clients missed them. ` +
            `Raise historySize, or look at why this node fell behind.`,
    );
  }

  // ---- replay -----------------------------------------------------------------------------

  private async runReplay(afterId: string, limit: number): Promise<Replay> {
    const commands = this.commands;
    if (commands === undefined || this.closed) throw new RedisUnavailableError('RedisTransport is not running.');
    if (!(await this.whenReady(commands, this.options.publishTimeout))) {
      throw new RedisUnavailableError(
        `Redis was unreachable for ${this.options.publishTimeout} ms; cannot replay after ${afterId}.`,
      );
    }
    const streamId = isStreamId(afterId) ? afterId : '';
    // The history is the last historySize events (the Stream may hold more, see MIN_RETAINED).
    const max = Math.max(1, Math.min(limit, this.options.historySize));
    const reply = (await REPLAY.run(
      commands as ScriptClient,
      [this.keys.events, this.keys.eventId(afterId)],
      [streamId, max + 1, this.options.historyMaxAge],
    )) as [string, string, unknown];
    if (reply[0] === 'reset') return { result: { status: 'reset', reason: reply[1] === 'expired' ? 'expired' : 'unknown' } };
    const entries = entriesOf(reply[2]);
    if (entries.length > max) return { result: { status: 'reset', reason: 'expired' } };
    // This node's reader must deliver everything up to the end of what was read before the stream
    // opens: the hub holds those live events and skips the ones replayed, or at or before the replay
    // point (the client had them from the node it came from; see compareIds). Any later live event
    // would otherwise write again what the replay wrote.
    const through = entries.length > 0 ? entries[entries.length - 1][0] : reply[1];
    await this.readThrough(through);
    const events: SseEnvelope[] = [];
    for (const [id, fields] of entries) {
      const envelope = decodeEntry(id, fields);
      // Junk was already reported by the reader; targeted sends are never replayed.
      if (typeof envelope !== 'string' && envelope.target === undefined) events.push(envelope);
    }
    return { result: { status: 'ok', events, after: reply[1] }, through };
  }

  // ---- stats ------------------------------------------------------------------------------

  /** Writes this node's counts when they changed, and renews the lease when a third of it is gone. */
  private async writeStats(): Promise<void> {
    const context = this.context;
    const commands = this.commands;
    if (context === undefined || commands === undefined || commands.status !== 'ready') return;
    const { updatedAt: _, ...counts } = context.localStats();
    const json = JSON.stringify(counts);
    const now = Date.now();
    if (json === this.lastStats && now - this.lastStatsAt < this.leaseMs / 3) return;
    try {
      await WRITE_STATS.run(
        commands as ScriptClient,
        [this.keys.nodes, this.keys.stats],
        [context.nodeId, JSON.stringify({ ...counts, updatedAt: now }), this.leaseMs, this.keyTtl()],
      );
      this.lastStats = json;
      this.lastStatsAt = now;
    } catch (err) {
      if (!this.closed) this.logger.warn(`Could not write this node's stats: ${(err as Error).message}`);
    }
  }

  /** Both stats keys outlive every lease, and vanish once no node has written for a while. */
  private keyTtl(): number {
    return Math.max(3 * this.leaseMs, 60_000);
  }

  /** Where Redis is, for messages: host and port, never a password. */
  private where(): string {
    if (this.options.client !== undefined) return 'the given client';
    try {
      const url = new URL(this.options.url);
      return `${url.protocol}//${url.host}`;
    } catch {
      return 'the configured url';
    }
  }
}

function duplicate(client: Client, options: RedisOptions): Client {
  if ((client as Cluster).isCluster) {
    const { lazyConnect, enableOfflineQueue, retryStrategy, ...node } = options;
    return (client as Cluster).duplicate([], {
      lazyConnect,
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy,
      redisOptions: node,
    } as any);
  }
  return (client as Redis).duplicate(options);
}

function isReplyError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'ReplyError';
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

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function parseStats(node: string, json: string): SseNodeStats | undefined {
  try {
    const value = JSON.parse(json);
    if (value === null || typeof value !== 'object' || typeof value.connected !== 'number') return undefined;
    return {
      node,
      connected: value.connected,
      endpoints: value.endpoints !== null && typeof value.endpoints === 'object' ? value.endpoints : {},
      keys: value.keys,
      updatedAt: typeof value.updatedAt === 'number' ? value.updatedAt : 0,
    };
  } catch {
    return undefined;
  }
}
