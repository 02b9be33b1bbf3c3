import { Observable, Subject, Subscription } from 'rxjs';
import { encodeSseMessage } from '../encoding/sse-message.js';
import type { SseMessage, SseStreamMessage } from '../interfaces/sse-message.interface.js';
import type { SseSink } from './sse-sink.js';

/** What a stream needs from the node that owns it. */
export interface SseStreamHost {
  /** Flush this stream's queue on the next turn of the event loop. */
  schedule(stream: SseStream): void;
  /** The stream's metadata changed from `before` to its current value for `key`. */
  reindex(stream: SseStream, key: string, before: readonly string[] | undefined): void;
  /**
   * Checks a metadata change against the endpoint's rules and returns the values as the stream
   * holds them (strings); throws on a violation.
   */
  checkMetadata(stream: SseStream, key: string, value: unknown): string[];
  /** The stream ended; `reason` says why. */
  closed(stream: SseStream, reason: SseCloseReason): void;
  /** An error from user code tied to this stream (an attached Observable, a close callback). */
  report(stream: SseStream, error: unknown, where: string): void;
  /** The `drop-oldest` policy just dropped `count` queued events of this stream. */
  dropped(stream: SseStream, count: number): void;
  /**
   * Settles once the transport delivers the events of the routed values the stream holds;
   * undefined when there is nothing to wait for (see `SseStream.metadataApplied`).
   */
  following?(stream: SseStream): Promise<unknown> | undefined;
}

/** Why a stream ended. */
export type SseCloseReason = 'client' | 'server' | 'slow' | 'error' | 'shutdown';

const enum State {
  Opening,
  Open,
  Closed,
}

interface HeldFrame {
  id: string | undefined;
  frame: Buffer;
}

/**
 * One open SSE connection. Made by the endpoint for each `GET` of its stream route and handed
 * to `onSseConnect`; found later through `SseHub.getStream(id)` or `SseHub.streams()`.
 *
 * Everything written to it goes through a bounded queue: writes honour backpressure, and a
 * client that falls further behind than `maxBufferSize` is handled by the endpoint's
 * `slowClientPolicy` instead of costing the process memory.
 *
 * @publicApi
 */
export class SseStream {
  /** Random id, unique per connection. */
  readonly id: string;
  /** Path of the endpoint it belongs to, for example `/events`. */
  readonly endpoint: string;
  /** `Last-Event-ID` the client arrived with, if any. */
  readonly lastEventId: string | undefined;
  /** When it opened, ms since the epoch. */
  readonly connectedAt = Date.now();

  /** @internal */ lastWriteAt = Date.now();
  /** @internal */ scheduled = false;
  /** @internal heartbeat interval this stream is registered under (ms), 0 for none. */
  heartbeatMs = 0;

  private state = State.Opening;
  private readonly meta = new Map<string, string[]>();
  private view: Readonly<Record<string, string | string[]>> | undefined;
  private held: HeldFrame[] | null = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /**
   * What the sink (the socket, or the response) held after the last flush: an upper bound on it
   * until the next flush, since only a flush adds to it. Enqueueing checks this, not the sink,
   * which with many streams is cold memory; the sink is read again only when the bound says full.
   */
  private flushedBound = Number.POSITIVE_INFINITY;
  private blocked = false;
  /** Set by `holdUntilOpen`: nothing is written before the stream opens. */
  private corked = false;
  private droppedCount = 0;
  // Made when first asked for: most streams are never observed, attached to or watched closing.
  private subject: Subject<SseStreamMessage> | undefined;
  private messages: Observable<SseStreamMessage> | undefined;
  private subscriptions: Subscription | undefined;
  private closeCallbacks: Array<(reason: SseCloseReason) => void> | undefined;

  /**
   * Every event written to this stream, as an Observable (an rxjs Subject inside, made on first
   * use); completes when the stream closes.
   */
  get messages$(): Observable<SseStreamMessage> {
    if (this.messages === undefined) {
      const subject = (this.subject = new Subject<SseStreamMessage>());
      if (this.state === State.Closed) subject.complete();
      this.messages = subject.asObservable();
    }
    return this.messages;
  }

  /** @internal */
  constructor(
    id: string,
    endpoint: string,
    metadata: Map<string, string[]>,
    lastEventId: string | undefined,
    private readonly sink: SseSink,
    private readonly host: SseStreamHost,
    private readonly maxBuffer: number,
    private readonly slowPolicy: 'disconnect' | 'drop-oldest',
  ) {
    this.id = id;
    this.endpoint = endpoint;
    this.lastEventId = lastEventId;
    for (const [key, values] of metadata) this.meta.set(key, values);
    sink.on('close', this.onSinkClose);
    sink.on('error', this.onSinkError);
  }

  /**
   * Metadata as a plain object: one string per key, or a list where a key has several values.
   * Read only; change it with `setMetadata`.
   */
  get metadata(): Readonly<Record<string, string | string[]>> {
    if (this.view === undefined) {
      const view: Record<string, string | string[]> = Object.create(null);
      for (const [key, values] of this.meta) view[key] = values.length === 1 ? values[0] : [...values];
      this.view = Object.freeze(view);
    }
    return this.view;
  }

  /** The values of one metadata key (empty when it has none). */
  getMetadataValues(key: string): readonly string[] {
    return this.meta.get(key) ?? EMPTY;
  }

  /**
   * Sets (or with `undefined`, removes) one metadata key. Filters see the change at once.
   * Throws when the endpoint's metadata limits refuse it.
   */
  setMetadata(key: string, value: string | number | boolean | ReadonlyArray<string | number | boolean> | undefined): this {
    if (this.state === State.Closed) return this;
    const before = this.meta.get(key);
    if (value === undefined) {
      if (before === undefined) return this;
      this.meta.delete(key);
    } else {
      this.meta.set(key, this.host.checkMetadata(this, key, value));
    }
    this.view = undefined;
    this.host.reindex(this, key, before);
    return this;
  }

  /**
   * Resolves once every broadcast published from now on reaches this stream as its metadata
   * stands now. At once on a transport that does not route by metadata (the memory transport,
   * Redis in its default mode); on Redis routed delivery (`routeBy`), once this node follows the
   * stream's routed values, which after a `setMetadata` of the routed key can take a round trip
   * to Redis: await it before a broadcast the stream must not miss. Rejects with an
   * `SseTransportUnavailableError` when the transport cannot follow the values for now.
   */
  async metadataApplied(): Promise<void> {
    if (this.state === State.Closed) return;
    await this.host.following?.(this);
  }

  /** @internal the normalized metadata, for the registry. */
  metadataEntries(): IterableIterator<[string, string[]]> {
    return this.meta.entries();
  }

  /** True until the stream closes. */
  get isOpen(): boolean {
    return this.state !== State.Closed;
  }

  /** Events dropped for this stream by the `drop-oldest` policy. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Bytes waiting to be written to this client. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.sink.writableLength;
  }

  /**
   * Sends one event to this stream only. Data that is not a string is sent as JSON. Throws
   * `SseEventError` for an event name or id that cannot be written safely.
   * @returns false when the stream is closed.
   */
  send(message: SseMessage): boolean {
    if (this.state === State.Closed) return false;
    const { frame, written } = encodeSseMessage(message);
    this.write(frame, written);
    return true;
  }

  /**
   * Sends every message an Observable emits until it completes or the stream closes. An error
   * from the source is reported to `onError` (the stream stays open) or, without it, ends the stream.
   */
  attach(source: Observable<SseMessage>, onError?: (err: unknown) => void): Subscription {
    const subscription = source.subscribe({
      next: (message) => {
        this.send(message);
      },
      error: (err) => {
        if (onError) return onError(err);
        this.host.report(this, err, 'an attached Observable');
        this.fail();
      },
    });
    if (this.state === State.Closed) subscription.unsubscribe();
    else (this.subscriptions ??= new Subscription()).add(subscription);
    return subscription;
  }

  /** Calls `callback` once when the stream closes. */
  onClose(callback: (reason: SseCloseReason) => void): void {
    if (this.state === State.Closed) callback('server');
    else (this.closeCallbacks ??= []).push(callback);
  }

  /** Ends the stream. The client's `EventSource` reconnects after its retry delay. */
  close(): void {
    this.end('server');
  }

  /** @internal writes bytes ahead of live events (retry, replay, welcome), even while opening. */
  write(frame: Buffer, message?: SseStreamMessage): void {
    if (this.state === State.Closed) return;
    this.enqueue(frame);
    if (message !== undefined && this.subject?.observed) this.subject.next(message);
  }

  /**
   * @internal delivers a live broadcast frame: held while the stream is opening (so replay
   * and the connect hook come first), queued once open.
   */
  deliver(frame: Buffer, id: string | undefined, message: SseStreamMessage): void {
    if (this.state === State.Opening) {
      this.held!.push({ id, frame });
      return;
    }
    if (this.state === State.Closed) return;
    this.enqueue(frame);
    if (this.subject?.observed) this.subject.next(message);
  }

  /**
   * @internal keeps what is written while opening (retry, welcome, replay) from the client until
   * the stream opens, then sends it in one write: a routing transport must follow the values the
   * connect hook gave the stream before the client can take the welcome as a sign it is live.
   */
  holdUntilOpen(): void {
    this.corked = true;
  }

  /** @internal ends the opening phase; held frames whose id was already replayed are skipped. */
  open(skip?: { has(id: string): boolean }): void {
    if (this.state !== State.Opening) return;
    const held = this.held!;
    this.held = null;
    this.state = State.Open;
    for (const { id, frame } of held) {
      if (id !== undefined && skip?.has(id)) continue;
      this.enqueue(frame);
    }
    if (this.corked) {
      this.corked = false;
      if (this.pendingBytes > 0 && !this.scheduled && !this.blocked) {
        this.scheduled = true;
        this.host.schedule(this);
      }
    }
  }

  /** @internal writes what is queued; called by the scheduler. */
  flush(now: number): void {
    this.scheduled = false;
    if (this.blocked || this.pendingBytes === 0 || this.state === State.Closed) return;
    const pending = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.lastWriteAt = now;
    const { sink } = this;
    const ok =
      pending.length === 1
        ? sink.write(pending[0])
        : sink.writeAll !== undefined
          ? sink.writeAll(pending, bytes)
          : sink.write(Buffer.concat(pending, bytes));
    if (!ok) {
      this.blocked = true;
      this.sink.once('drain', this.onDrain);
    }
    this.flushedBound = this.sink.writableLength;
  }

  /** @internal ends the stream with a last frame (drain hints) and the given reason. */
  end(reason: SseCloseReason, lastFrame?: Buffer): void {
    if (this.state === State.Closed) return;
    const pending = this.pending;
    this.cleanup(reason);
    if (!this.sink.writableEnded && !this.sink.destroyed) {
      if (reason === 'slow' || reason === 'error') {
        this.sink.destroy();
      } else {
        for (const chunk of pending) this.sink.write(chunk);
        this.sink.end(lastFrame);
      }
    }
  }

  private enqueue(frame: Buffer): void {
    const size = frame.length;
    if (this.pendingBytes + this.flushedBound + size > this.maxBuffer) this.flushedBound = this.sink.writableLength;
    if (this.pendingBytes + this.flushedBound + size > this.maxBuffer) {
      if (this.slowPolicy === 'disconnect' || size > this.maxBuffer) {
        this.end('slow');
        return;
      }
      let dropped = 0;
      while (this.pending.length > 0 && this.pendingBytes + this.sink.writableLength + size > this.maxBuffer) {
        this.pendingBytes -= this.pending.shift()!.length;
        dropped++;
      }
      if (dropped > 0) {
        this.droppedCount += dropped;
        this.host.dropped(this, dropped);
      }
    }
    this.pending.push(frame);
    this.pendingBytes += size;
    if (!this.scheduled && !this.blocked && !this.corked) {
      this.scheduled = true;
      this.host.schedule(this);
    }
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    if (this.pendingBytes > 0 && !this.scheduled && !this.corked) {
      this.scheduled = true;
      this.host.schedule(this);
    }
  };

  private readonly onSinkClose = (): void => {
    this.cleanup('client');
  };

  private readonly onSinkError = (): void => {
    this.cleanup('error');
  };

  private fail(): void {
    this.end('error');
  }

  private cleanup(reason: SseCloseReason): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.held = null;
    this.pending = [];
    this.pendingBytes = 0;
    this.sink.off('close', this.onSinkClose);
    this.sink.off('drain', this.onDrain);
    // keep an 'error' listener: a late socket error must not become an uncaught exception
    this.subscriptions?.unsubscribe();
    this.subject?.complete();
    this.host.closed(this, reason);
    const callbacks = this.closeCallbacks ?? [];
    this.closeCallbacks = undefined;
    for (const callback of callbacks) {
      try {
        callback(reason);
      } catch (err) {
        this.host.report(this, err, 'a close callback');
      }
    }
  }
}

const EMPTY: readonly string[] = Object.freeze([]);
