import { Logger } from '@nestjs/common';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { connectOrExplain, diagnose } from './redis-connect-errors.js';
import type { ResolvedRedisOptions } from './redis.options.js';

export type Client = Redis | Cluster;

/**
 * The transport's two connections and their lifecycle: the command connection (the app's client,
 * or one made from `url`) and a duplicate for the blocking reader. It tells the outage once and
 * the recovery once, and closes only what it made.
 */
export class RedisConnections {
  commands: Client | undefined;
  reader: Client | undefined;
  /** The shard-channel subscriber of routed delivery, made on first use. */
  subscriber: Client | undefined;
  /** Set once the transport closes: every part stops what it was doing. */
  closed = false;
  outages = 0;
  outageSince: number | undefined;
  /** The last error Redis (or the connection to it) gave, until a publish succeeds: says why a broadcast timed out. */
  lastFailure: unknown;
  private readonly logger = new Logger('RedisTransport');
  private readonly owned: Client[] = [];
  private readonly detach: Array<() => void> = [];
  /** Both connections were ready once: until then a failure is start-up's to report, not an outage. */
  private opened = false;

  /** `onCommandsReady` runs each time the command connection is (again) ready. */
  constructor(
    private readonly options: ResolvedRedisOptions,
    private readonly onCommandsReady: () => void,
  ) {}

  /** Makes (or takes) the command connection, duplicates it for the reader, and waits for both. */
  async open(): Promise<void> {
    const commands = this.options.client ?? this.own(new Redis(this.options.url, this.connectionOptions('commands')));
    this.commands = commands;
    this.watch(commands, 'commands');
    await this.connect(commands);
    const reader = this.own(duplicate(commands, this.connectionOptions('reader')));
    this.reader = reader;
    this.watch(reader, 'reader');
    await this.connect(reader);
    this.opened = true;
  }

  /**
   * Duplicates the command connection once more for SSUBSCRIBE (a connection in subscriber mode
   * runs nothing else); `onReady` runs each time it is (again) ready, its subscriptions renewed.
   */
  async openSubscriber(onReady: () => void): Promise<Client> {
    const options: RedisOptions = { ...this.connectionOptions('subscriber'), autoResubscribe: true };
    const subscriber = this.own(duplicate(this.commands!, options, true));
    this.subscriber = subscriber;
    this.watch(subscriber, 'subscriber', onReady);
    await this.connect(subscriber);
    return subscriber;
  }

  /** 1 when both connections are ready, for the metrics. */
  get connected(): number {
    return this.commands?.status === 'ready' && this.reader?.status === 'ready' ? 1 : 0;
  }

  /** 1 when the command connection is ready: broadcasts go out only then, and wait until then. */
  get commandsConnected(): number {
    return this.commands?.status === 'ready' ? 1 : 0;
  }

  /** The command connection when it is ready, or an error that says what it is instead. */
  readyCommands(): Client {
    if (this.commands === undefined || this.commands.status !== 'ready')
      throw new Error(`the connection is ${this.commands?.status ?? 'not open'}`);
    return this.commands;
  }

  /** Resolves true once `client` is ready, false after `timeout` ms or on close. */
  whenReady(client: Client, timeout: number): Promise<boolean> {
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

  /** Stops listening to the connections' state (before they are closed on purpose). */
  stopWatching(): void {
    this.closed = true;
    for (const undo of this.detach.splice(0)) undo();
  }

  /** Closes the connections the transport made (never the app's), waiting until their sockets are closed. */
  async close(): Promise<void> {
    this.stopWatching();
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

  /** Where Redis is, for messages: host and port, never a password. */
  where(): string {
    if (this.options.client !== undefined) return 'the given client';
    try {
      const url = new URL(this.options.url);
      return `${url.protocol}//${url.host}`;
    } catch {
      return 'the configured url';
    }
  }

  private own<C extends Client>(client: C): C {
    this.owned.push(client);
    return client;
  }

  private connectionOptions(role: 'commands' | 'reader' | 'subscriber'): RedisOptions {
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
  private watch(client: Client, role: string, ready = role === 'commands' ? this.onCommandsReady : undefined): void {
    const onReady = () => {
      if (this.outageSince !== undefined) {
        const after = Date.now() - this.outageSince;
        this.logger.log(this.opened ? `Redis is back after ${after} ms; resuming.` : `Reached Redis after ${after} ms.`);
        this.outageSince = undefined;
      }
      ready?.();
    };
    const onError = (err: Error) => {
      if (this.closed) return;
      this.lastFailure = err;
      if (this.outageSince === undefined) {
        this.outageSince = Date.now();
        this.outages++;
        if (this.opened) {
          this.logger.warn(
            `Lost Redis (${role} connection: ${err.message}); reconnecting, broadcasts wait up to ${this.options.publishTimeout} ms.`,
          );
        } else if (!diagnose(err, this.where()).final) {
          // a final cause (a wrong password) fails the start at once, with its own error
          this.logger.warn(
            `Waiting for Redis at ${this.where()} (${err.message}); the app fails to start if it is not ready within ${this.options.connectTimeout} ms (connectTimeout).`,
          );
        }
      }
    };
    const onClose = () => {
      if (!this.closed && this.opened && this.outageSince === undefined) {
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

  /**
   * Connects a client (if it is not yet) and waits until it is ready, at most `connectTimeout`;
   * fails at once, naming the cause, when retrying cannot help (see `connectOrExplain`).
   */
  private connect(client: Client): Promise<void> {
    return connectOrExplain(client, this.options.connectTimeout, this.where());
  }
}

function duplicate(client: Client, options: RedisOptions, sharded = false): Client {
  if ((client as Cluster).isCluster) {
    const { lazyConnect, enableOfflineQueue, retryStrategy, ...node } = options;
    // a sharded subscriber per master: SSUBSCRIBE must reach the master that owns the channel's slot
    return (client as Cluster).duplicate([], {
      lazyConnect,
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy,
      redisOptions: node,
      shardedSubscribers: sharded,
    });
  }
  return (client as Redis).duplicate(options);
}

export function isReplyError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'ReplyError';
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
