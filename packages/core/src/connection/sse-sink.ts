/**
 * Where a stream's bytes go after the head: the response, or the connection's socket itself.
 * Both are Node writables with the same surface.
 */
export interface SseSink {
  write(chunk: Buffer | string): boolean;
  /** Writes several chunks as one, when the sink can do better than a concatenation. */
  writeAll?(chunks: readonly Buffer[], bytes: number): boolean;
  /** `end(lastChunk?)`; the rest is Node's overloads (a socket's and a response's differ). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  end(...args: any[]): unknown;
  destroy(): unknown;
  on(event: 'close' | 'error' | 'drain', listener: (...args: unknown[]) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'close' | 'error' | 'drain', listener: (...args: unknown[]) => void): unknown;
  readonly writableLength: number;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}
