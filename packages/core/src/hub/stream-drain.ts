import { Injectable } from '@nestjs/common';
import type { SseStream } from '../connection/sse-stream.js';
import { encodeSseFrame, encodeSseRetry } from '../encoding/sse-encoder.js';
import type { SseTransportUnavailableError } from '../errors/sse-transport-unavailable.error.js';
import type { SseResetReason } from '../interfaces/sse-transport.interface.js';
import { DEFAULT_RETRY, SSE_RESET_EVENT } from '../sse.constants.js';
import { LocalStreams } from './local-streams.js';

/**
 * The `retry:` field a stream ends with when the server sends it away (shutdown, or a stream
 * refused while draining): the endpoint's `retry` plus up to `spread` ms of jitter, so clients
 * sent away together do not all come back at the same instant.
 */
export function retryHint(retry: number, spread: number): Buffer {
  return encodeSseRetry(retry + Math.random() * spread);
}

/**
 * The `Retry-After` (whole seconds, at least 1) of a stream refused for now (a connection limit):
 * the endpoint's `retry`, what its clients wait after a dropped stream.
 */
export function retryAfterSeconds(retry: number): number {
  return Math.max(1, Math.ceil(retry / 1000));
}

/** Spread of the hint when streams end all at once (`drainTimeout: 0`), and on a refused stream. */
export const RETRY_SPREAD = 1000;

/**
 * Ends a stream the transport cannot serve for now (its history or its routed values are out of
 * reach, not gone): a retry hint of at least `retry` ms (the endpoint's) and the error's
 * `retryAfter`, so that the client comes back, with the same `Last-Event-ID`, rather than start over.
 */
export function sendAway(
  stream: SseStream,
  retry: number,
  err: SseTransportUnavailableError,
  warn: (text: string) => void,
): void {
  warn(`Sent a stream away to come back later: ${err.message}`);
  stream.end('server', retryHint(Math.max(retry, err.retryAfter * 1000), RETRY_SPREAD));
}

/** The `sse.reset` event a stream is sent when it cannot be resumed or was owed lost events, and its `messages$` form. */
export function resetEvent(reason: SseResetReason): { frame: Buffer; message: { event: string; data: string } } {
  const message = { event: SSE_RESET_EVENT, data: JSON.stringify({ reason }) };
  return { frame: encodeSseFrame(message), message };
}

/**
 * Streams per second one process is taken to admit when the clients of a drained node come back
 * together (one core opens 1,300-3,000 per second, see the connect benchmark): a drain spreads
 * its hints over at least `count / RECONNECT_RATE` seconds, so its clients do not come back
 * faster than a node can take them (past that, the listen backlog overflows and the kernel drops
 * connection attempts, which clients retry only after seconds of TCP back-off).
 */
export const RECONNECT_RATE = 1000;

/** Over how many ms the retry hints of `count` streams sent away together are jittered. */
export function hintSpread(count: number, window: number): number {
  return Math.max(window, RETRY_SPREAD, (count / RECONNECT_RATE) * 1000);
}

/** Paces the shutdown: every stream ends within `drainTimeout`, each with its retry hint. */
@Injectable()
export class StreamDrain {
  /** Each endpoint's `retry`, by path. */
  private readonly retries = new Map<string, number>();

  constructor(private readonly streams: LocalStreams) {}

  /** Records an endpoint's `retry`, which its streams' hints jitter around. */
  setRetry(endpoint: string, retry: number): void {
    this.retries.set(endpoint, retry);
  }

  /**
   * Ends every stream, spread over `window` ms in batches about 20 ms apart, each with a `retry`
   * hint jittered over `hintSpread` (at least the window).
   */
  async drain(window: number): Promise<void> {
    const streams = [...this.streams.registry.values()];
    if (streams.length === 0) return;
    if (!(window > 0)) {
      for (const stream of streams) this.end(stream, streams.length, 0);
      return;
    }
    const started = Date.now();
    const batches = Math.max(1, Math.min(streams.length, Math.ceil(window / 20)));
    const perBatch = Math.ceil(streams.length / batches);
    for (let i = 0; i < streams.length; i += perBatch) {
      for (const stream of streams.slice(i, i + perBatch)) this.end(stream, streams.length, window);
      const next = started + ((i / perBatch + 1) * window) / batches;
      const wait = next - Date.now();
      if (wait > 0 && i + perBatch < streams.length) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private end(stream: SseStream, count: number, window: number): void {
    const retry = this.retries.get(stream.endpoint) ?? DEFAULT_RETRY;
    stream.end('shutdown', retryHint(retry, hintSpread(count, window)));
  }
}
