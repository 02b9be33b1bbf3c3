import { MemoryTransport } from '@nest-sse/core';
import { describe, it, expect, afterEach, jest } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { MetadataRules } from '../../src/connection/metadata-rules.js';
import { SseStream, type SseStreamHost } from '../../src/connection/sse-stream.js';
import { LocalStreams } from '../../src/hub/local-streams.js';
import { SseNode } from '../../src/hub/sse-node.js';
import { hintSpread, RECONNECT_RATE, retryAfterSeconds, StreamDrain } from '../../src/hub/stream-drain.js';
import { WriteScheduler } from '../../src/hub/write-scheduler.js';
import { DEFAULT_RETRY } from '../../src/sse.constants.js';

/** `count` registered streams of `endpoint`, each with what its client received. */
function open(local: LocalStreams, endpoint: string, count: number) {
  const rules = new MetadataRules();
  const host: SseStreamHost = { ...local.host, checkMetadata: (s, key, value) => rules.checkChange(s.metadata, key, value) };
  return Array.from({ length: count }, (_, i) => {
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (chunk: Buffer) => (text += chunk));
    const stream = new SseStream(`${endpoint}-${i}`, endpoint, new Map(), undefined, sink, host, 1 << 20, 'disconnect');
    local.register(stream, 0, 'response');
    return { stream, text: () => text };
  });
}

const retryOf = (text: string): number => Number(/^retry: (\d+)\n\n$/.exec(text)?.[1]);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('StreamDrain', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

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

  it('spreads the ends over the window in batches, the hints over at least a second', async () => {
    // The clock moves only when the test moves it, so each batch is seen on its own whatever the
    // machine's load (a drain behind its schedule ends the late batches at once, to keep the window).
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const local = new LocalStreams(new SseNode(), new WriteScheduler(), new MemoryTransport());
    const drain = new StreamDrain(local);
    drain.setRetry('/feed', 5000);
    const streams = open(local, '/feed', 100);
    const ended: number[] = [];
    local.onClose(() => ended.push(local.registry.size));
    // a 200 ms window: 10 batches of 10 streams 20 ms apart, the first at once
    const done = drain.drain(200);
    const left = [local.registry.size];
    for (let batch = 1; batch < 10; batch++) {
      await jest.advanceTimersByTimeAsync(20);
      left.push(local.registry.size);
    }
    await done;
    expect(left).toEqual([90, 80, 70, 60, 50, 40, 30, 20, 10, 0]);
    expect(ended).toHaveLength(100);
    await nextTurn();
    const hints = streams.map((s) => retryOf(s.text()));
    expect(hints.every((r) => r >= 5000 && r <= 6000)).toBe(true);
    expect(Math.max(...hints) - Math.min(...hints)).toBeGreaterThan(200);
  });

  it('spreads the hints of many streams over the time a node takes to admit them again', async () => {
    const local = new LocalStreams(new SseNode(), new WriteScheduler(), new MemoryTransport());
    const drain = new StreamDrain(local);
    drain.setRetry('/many', 500);
    // 4,000 streams at RECONNECT_RATE (1,000 per second): hints over 4 s above retry, not 1 s
    expect(RECONNECT_RATE).toBe(1000);
    expect(hintSpread(4000, 0)).toBe(4000);
    expect(hintSpread(4000, 10_000)).toBe(10_000);
    expect(hintSpread(10, 0)).toBe(1000);
    const streams = open(local, '/many', 4000);
    await drain.drain(0);
    await nextTurn();
    const hints = streams.map((s) => retryOf(s.text()));
    expect(hints.every((r) => r >= 500 && r <= 4500)).toBe(true);
    // evenly: each second of the spread gets about a quarter of the clients
    for (let second = 0; second < 4; second++) {
      const within = hints.filter((r) => r >= 500 + second * 1000 && r < 1500 + second * 1000).length;
      expect(within).toBeGreaterThan(800);
      expect(within).toBeLessThan(1200);
    }
  });

  it('does nothing without streams', async () => {
    const local = new LocalStreams(new SseNode(), new WriteScheduler(), new MemoryTransport());
    await expect(new StreamDrain(local).drain(1000)).resolves.toBeUndefined();
  });

  it("says when a refused stream may try again: its endpoint's retry in whole seconds, at least 1", () => {
    expect(retryAfterSeconds(DEFAULT_RETRY)).toBe(3);
    expect(retryAfterSeconds(2500)).toBe(3);
    expect(retryAfterSeconds(100)).toBe(1);
    expect(retryAfterSeconds(0)).toBe(1);
  });
});
