import { encodeSseComment } from '../encoding/sse-encoder.js';
import type { SseStream } from './sse-stream.js';

const HEARTBEAT = encodeSseComment();

/**
 * One timer per distinct interval for all streams, not one per stream. Each tick writes a
 * comment only to streams that have been silent for at least half the interval, so an idle
 * stream hears something every interval and a busy one is never padded.
 */
export class HeartbeatScheduler {
  private readonly groups = new Map<number, { timer: NodeJS.Timeout; streams: Set<SseStream> }>();

  add(stream: SseStream, intervalMs: number): void {
    if (!(intervalMs > 0)) return;
    let group = this.groups.get(intervalMs);
    if (!group) {
      const streams = new Set<SseStream>();
      const timer = setInterval(() => this.tick(streams, intervalMs), intervalMs);
      timer.unref();
      this.groups.set(intervalMs, (group = { timer, streams }));
    }
    group.streams.add(stream);
    stream.heartbeatMs = intervalMs;
  }

  remove(stream: SseStream): void {
    const group = this.groups.get(stream.heartbeatMs);
    if (!group) return;
    group.streams.delete(stream);
    if (group.streams.size === 0) {
      clearInterval(group.timer);
      this.groups.delete(stream.heartbeatMs);
    }
  }

  /** Number of live timers (one per interval in use). */
  get timers(): number {
    return this.groups.size;
  }

  stop(): void {
    for (const group of this.groups.values()) clearInterval(group.timer);
    this.groups.clear();
  }

  private tick(streams: Set<SseStream>, intervalMs: number): void {
    const silentSince = Date.now() - intervalMs / 2;
    for (const stream of streams) {
      if (stream.lastWriteAt <= silentSince) stream.write(HEARTBEAT);
    }
  }
}
