import { PassThrough } from 'node:stream';
import { SseStream } from '@nest-sse/core';
import { MetadataRules, type SseStreamHost } from '@nest-sse/core/internal';

/** A stream over an in-memory writable, for tests of what sits above the socket. */
export function makeStream(
  id: string,
  metadata: Record<string, string | string[]>,
  endpoint: string,
  host: Partial<SseStreamHost> = {},
): SseStream {
  const sink = new PassThrough();
  const full: SseStreamHost = {
    schedule: (s) => setImmediate(() => s.flush(Date.now())),
    reindex: () => undefined,
    checkMetadata: (s, key, value) => new MetadataRules().checkChange(s.metadata, key, value),
    closed: () => undefined,
    report: () => undefined,
    dropped: () => undefined,
    ...host,
  };
  const meta = new Map(Object.entries(metadata).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
  return new SseStream(id, endpoint, meta, undefined, sink as any, full, 1 << 20, 'disconnect');
}
