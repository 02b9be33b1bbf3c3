import { Writable } from 'node:stream';

/**
 * A sink that holds every write until `release()`: a client that reads nothing until told to.
 * Its `writableLength` and `write()` returns are Node's own, with a small high-water mark.
 */
export class HeldSink extends Writable {
  readonly chunks: Buffer[] = [];
  private held: Array<() => void> = [];

  constructor(highWaterMark = 16) {
    super({ highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    this.held.push(callback);
  }

  /** The client reads everything written so far. */
  release(): void {
    for (const callback of this.held.splice(0)) callback();
  }

  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

/** One turn of the event loop: the stream's scheduled flush runs. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
