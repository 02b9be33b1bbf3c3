import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';

/** Counters since start, per node. */
export interface SseCounters {
  /** Broadcasts this node published. */
  published: number;
  /** Events this node wrote to its streams (one per recipient). */
  delivered: number;
  /** Streams ended because the client fell behind. */
  slowDisconnects: number;
  /** Events dropped for slow clients under `drop-oldest`. */
  dropped: number;
  /** Connections that resumed with `Last-Event-ID`, and events replayed to them. */
  replays: number;
  replayedEvents: number;
  /** Connections told to reset (`sse.reset`): their id could not be resumed, or events they were owed were lost. */
  resets: number;
  /** Streams opened and closed since start. */
  opened: number;
  closed: number;
}

/** This process as a node of the cluster: its id, its counters since start, and its log. */
@Injectable()
export class SseNode {
  /** Random per start; the transport tells this node's own envelopes apart by it. */
  readonly id = randomUUID();
  readonly counters: SseCounters = {
    published: 0,
    delivered: 0,
    slowDisconnects: 0,
    dropped: 0,
    replays: 0,
    replayedEvents: 0,
    resets: 0,
    opened: 0,
    closed: 0,
  };
  readonly logger = new Logger('SseHub');

  /** Logs an error with its stack, whatever was thrown. */
  error(text: string, err: unknown): void {
    this.logger.error(`${text}: ${(err as Error)?.message ?? String(err)}`, (err as Error)?.stack);
  }
}
