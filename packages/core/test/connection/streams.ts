import { PassThrough } from 'node:stream';
import { SseStream, type SseStreamHost } from '@nest-sse/core';

/** A stream over an in-memory writable, for tests of what sits above the socket. */
export function makeStream(
  id: string,
  metadata: Record<string, string | string[]>,
  options: { endpoint?: string; host?: Partial<SseStreamHost>; maxBuffer?: number; policy?: 'disconnect' | 'drop-oldest'; sink?: PassThrough } = {},
): { stream: SseStream; sink: PassThrough } {
  const sink = options.sink ?? new PassThrough();
  const host: SseStreamHost = {
    schedule: (s) => setImmediate(() => s.flush(Date.now())),
    reindex: () => undefined,
    checkMetadata: () => undefined,
    closed: () => undefined,
    report: () => undefined,
    ...options.host,
  };
  const meta = new Map(Object.entries(metadata).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
  const stream = new SseStream(id, options.endpoint ?? '/events', meta, undefined, sink as any, host, options.maxBuffer ?? 1 << 20, options.policy ?? 'disconnect');
  return { stream, sink };
}
