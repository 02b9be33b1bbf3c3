import { Injectable } from '@nestjs/common';
import type { SseStream } from '../connection/sse-stream.js';

/**
 * Flushes the streams that queued bytes, once per turn of the event loop: what one connection
 * is owed within a turn goes out in one write, whatever number of events made it.
 */
@Injectable()
export class WriteScheduler {
  private dirty: SseStream[] = [];
  private armed = false;

  /** Flush this stream on the next turn (a stream asks once until it is flushed). */
  readonly schedule = (stream: SseStream): void => {
    this.dirty.push(stream);
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.flush);
    }
  };

  private readonly flush = (): void => {
    this.armed = false;
    const dirty = this.dirty;
    this.dirty = [];
    const now = Date.now();
    for (let i = 0; i < dirty.length; i++) dirty[i].flush(now);
  };
}
