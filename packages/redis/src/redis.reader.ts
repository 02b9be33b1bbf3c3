import { Logger } from '@nestjs/common';
import type { SseEnvelope } from '@nest-sse/core';
import { isReplyError, type RedisConnections } from './redis.connections.js';
import { compareStreamIds, decodeEntry, previousOf, xreadEntries } from './redis-envelope.js';
import type { ResolvedRedisOptions } from './redis.options.js';

/** How long one XREAD blocks before it returns empty and is sent again. */
const BLOCK_MS = 5_000;

/**
 * Reads one Stream on the reader connection from the last id it saw, for as long as the transport
 * runs, and hands every entry on in Stream order: after a dropped connection or a Redis restart it
 * resumes from that id, so nothing accepted is skipped. Each entry names the one before it, so
 * entries trimmed before this node read them are noticed and reported.
 */
export class RedisStreamReader {
  /** The last entry read ('0-0' before the first). */
  lastId = '0-0';
  /** Times this node found entries missing between two it read (see `reportGap`). */
  gaps = 0;
  /** Entries that were not envelopes (another program's junk), logged and skipped. */
  droppedEntries = 0;
  private readonly logger = new Logger('RedisTransport');
  private readonly waiters = new Set<{ id: string; resolve: () => void }>();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly connections: RedisConnections,
    private readonly key: string,
    private readonly options: ResolvedRedisOptions,
    private readonly deliver: (envelope: SseEnvelope) => void,
  ) {}

  /** Starts reading after `lastId`. */
  start(lastId: string): void {
    this.lastId = lastId;
    this.loop = this.read();
  }

  /** Ends the read loop (the transport closes the reader connection) and releases every waiter. */
  async stop(): Promise<void> {
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
    // the reader is always one the transport made (a duplicate)
    this.connections.reader?.disconnect();
    await this.loop;
  }

  /** Resolves once this node's reader has delivered `id`, or after publishTimeout (with a warning). */
  readThrough(id: string): Promise<void> {
    if (compareStreamIds(this.lastId, id) >= 0 || this.connections.closed) return Promise.resolve();
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

  private async read(): Promise<void> {
    const reader = this.connections.reader!;
    let failures = 0;
    while (!this.connections.closed) {
      if (reader.status !== 'ready') {
        await this.connections.whenReady(reader, 1000);
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
          this.key,
          this.lastId,
        );
        failures = 0;
        this.handle(xreadEntries(reply));
      } catch (err) {
        if (this.connections.closed) break;
        if (isReplyError(err)) this.logger.error(`Reading ${this.key} failed: ${(err as Error).message}`);
        // Never spin: a failure that leaves the connection 'ready' waits before the next try.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(this.options.maxReconnectDelay, 25 * 2 ** Math.min(failures++, 10))),
        );
      }
    }
  }

  private handle(entries: Array<[string, unknown]>): void {
    for (const [id, fields] of entries) {
      const previous = previousOf(fields);
      if (previous !== undefined && previous !== this.lastId && this.lastId !== '0-0') this.reportGap(this.lastId, id, previous);
      this.lastId = id;
      const envelope = decodeEntry(id, fields);
      if (typeof envelope === 'string') {
        this.droppedEntries++;
        this.logger.warn(`Dropped Stream entry ${id} of ${this.key}: ${envelope}.`);
        continue;
      }
      try {
        this.deliver(envelope);
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

  /** Every entry names the one before it: a different name means this node did not read some. */
  private reportGap(seen: string, next: string, previous: string): void {
    this.gaps++;
    this.logger.error(
      previous === ''
        ? `The Stream ${this.key} was recreated (Redis lost its data?): events after ${seen} may never have reached this node's clients.`
        : `Events between ${seen} and ${next} were trimmed from ${this.key} before this node read them; its clients missed them. ` +
            `Raise historySize, or look at why this node fell behind.`,
    );
  }
}
