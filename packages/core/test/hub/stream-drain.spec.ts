import { MemoryTransport } from '@nest-sse/core';
import { describe, it, expect } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { SseStream } from '../../src/connection/sse-stream.js';
import { LocalStreams } from '../../src/hub/local-streams.js';
import { SseNode } from '../../src/hub/sse-node.js';
import { StreamDrain } from '../../src/hub/stream-drain.js';
import { WriteScheduler } from '../../src/hub/write-scheduler.js';
import { DEFAULT_RETRY } from '../../src/sse.constants.js';

/** `count` registered streams of `endpoint`, each with what its client received. */
function open(local: LocalStreams, endpoint: string, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (chunk: Buffer) => (text += chunk));
    const stream = new SseStream(`${endpoint}-${i}`, endpoint, new Map(), undefined, sink, local.host, 1 << 20, 'disconnect');
    local.register(stream, 0, 'response');
    return { stream, text: () => text };
  });
}

const retryOf = (text: string): number => Number(/^retry: (\d+)\n\n$/.exec(text)?.[1]);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('StreamDrain', () => {
  it("ends every stream with a retry hint jittered above its endpoint's retry", async () => {
    const local = new LocalStreams(new SseNode(), new WriteScheduler(), new MemoryTransport());
    const drain = new StreamDrain(local);
    drain.setRetry('/slow', 20_000);
    const slow = open(local, '/slow', 50);
    const plain = open(local, '/plain', 50);
    await drain.drain(0);
    await nextTurn();
    expect(local.registry.size).toBe(0);
    const slowHints = slow.map((s) => retryOf(s.text()));
    const plainHints = plain.map((s) => retryOf(s.text()));
    expect(slowHints.every((r) => r >= 20_000 && r <= 21_000)).toBe(true);
    expect(plainHints.every((r) => r >= DEFAULT_RETRY && r <= DEFAULT_RETRY + 1000)).toBe(true);
    expect(new Set(slowHints).size).toBeGreaterThan(10);
  });

  it('spreads the ends over the window in batches, the hints over the same window', async () => {
    const local = new LocalStreams(new SseNode(), new WriteScheduler(), new MemoryTransport());
    const drain = new StreamDrain(local);
    drain.setRetry('/feed', 5000);
    const streams = open(local, '/feed', 100);
    const ended: number[] = [];
    local.onClose(() => ended.push(local.registry.size));
    // a 200 ms window: 10 batches of 10 streams, the first at once
    const done = drain.drain(200);
    expect(local.registry.size).toBe(90);
    await done;
    expect(local.registry.size).toBe(0);
    expect(ended).toHaveLength(100);
    await nextTurn();
    const hints = streams.map((s) => retryOf(s.text()));
    expect(hints.every((r) => r >= 5000 && r <= 5200)).toBe(true);
  });

  it('does nothing without streams', async () => {
    const local = new LocalStreams(new SseNode(), new WriteScheduler(), new MemoryTransport());
    await expect(new StreamDrain(local).drain(1000)).resolves.toBeUndefined();
  });
});
