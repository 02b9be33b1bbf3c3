import type { Socket } from 'node:net';
import type { SseSink } from '../connection/sse-sink.js';

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** Frames up to this size are copied into one chunk; larger ones go out as three buffers. */
export const COPY_LIMIT = 16 * 1024;

/**
 * A frame's bytes as one HTTP chunk, kept on the frame itself: a broadcast's frame is one Buffer
 * written to stream after stream, so it is framed by the first chunked sink that writes it and
 * the others write the same bytes. The chunk goes when the frame goes.
 */
const CHUNKED = Symbol('nest-sse:chunked');
type Frame = Buffer & { [CHUNKED]?: Buffer };

/** One HTTP chunk in one buffer: the size line, every frame, the CRLF (one copy). */
export function chunkOf(frames: readonly Buffer[], bytes: number): Buffer {
  const size = `${bytes.toString(16)}\r\n`;
  const chunk = Buffer.allocUnsafe(size.length + bytes + 2);
  let at = chunk.write(size, 0, 'latin1');
  for (const frame of frames) at += frame.copy(chunk, at);
  chunk[at] = 13;
  chunk[at + 1] = 10;
  return chunk;
}

/** A taken socket under a `Transfer-Encoding: chunked` head: each write is one chunk. */
export class ChunkedSocketSink implements SseSink {
  /**
   * @param head the response head, when it is not sent yet: it goes out in one write with the
   * first chunk (or the last chunk, for a stream that ends before writing).
   */
  constructor(
    private readonly socket: Socket,
    private head?: Buffer,
  ) {}

  write(chunk: Buffer | string): boolean {
    const data: Frame = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (data.length === 0) return this.head === undefined ? this.socket.writableLength === 0 : this.send();
    if (data.length > COPY_LIMIT) {
      const size = `${data.length.toString(16)}\r\n`;
      // large: three buffers in one writev rather than a copy
      this.socket.cork();
      this.sendHead();
      this.socket.write(size, 'latin1');
      this.socket.write(data);
      const ok = this.socket.write(CRLF);
      this.socket.uncork();
      return ok;
    }
    return this.send((data[CHUNKED] ??= chunkOf([data], data.length)));
  }

  writeAll(chunks: readonly Buffer[], bytes: number): boolean {
    if (bytes > COPY_LIMIT) return this.write(Buffer.concat(chunks, bytes));
    return this.send(chunkOf(chunks, bytes));
  }

  end(chunk?: Buffer | string): void {
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.send(LAST_CHUNK, true);
  }

  /** Writes `chunk` (or nothing) after the head if it has not gone yet, in one write. */
  private send(chunk?: Buffer, last = false): boolean {
    const head = this.head;
    this.head = undefined;
    const data =
      head === undefined ? chunk! : chunk === undefined ? head : Buffer.concat([head, chunk], head.length + chunk.length);
    if (last) {
      this.socket.end(data);
      return false;
    }
    return this.socket.write(data);
  }

  private sendHead(): void {
    if (this.head === undefined) return;
    this.socket.write(this.head);
    this.head = undefined;
  }

  destroy(): void {
    if (this.head === undefined) {
      this.socket.destroy();
      return;
    }
    // Ended in error before its first write: the head still goes, then the connection closes
    // with the chunked body unfinished, as it would have had the head gone out first.
    this.socket.end(this.head);
    this.head = undefined;
  }

  on(event: 'close' | 'error' | 'drain', listener: (...args: unknown[]) => void): this {
    this.socket.on(event, listener);
    return this;
  }

  once(event: 'drain', listener: () => void): this {
    this.socket.once(event, listener);
    return this;
  }

  off(event: 'close' | 'error' | 'drain', listener: (...args: unknown[]) => void): this {
    this.socket.off(event, listener);
    return this;
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  get writableEnded(): boolean {
    return this.socket.writableEnded;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }
}
