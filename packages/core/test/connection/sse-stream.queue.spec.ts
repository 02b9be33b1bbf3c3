import { describe, it, expect } from '@jest/globals';
import type { SseCloseReason, SseStreamHost } from '../../src/connection/sse-stream.js';
import { SseStream } from '../../src/connection/sse-stream.js';
import { MetadataRules } from '../../src/connection/metadata-rules.js';
import { HeldSink, nextTurn } from './sink.js';

/** An open stream over `sink` whose host flushes on the next turn and records what it is told. */
function open(sink: HeldSink, maxBuffer: number, policy: 'disconnect' | 'drop-oldest') {
  const told = { closed: [] as SseCloseReason[], dropped: 0 };
  const host: SseStreamHost = {
    schedule: (s) => setImmediate(() => s.flush(Date.now())),
    reindex: () => undefined,
    checkMetadata: (s, key, value) => new MetadataRules().checkChange(s.metadata, key, value),
    closed: (_s, reason) => told.closed.push(reason),
    report: () => undefined,
    dropped: (_s, count) => (told.dropped += count),
  };
  const stream = new SseStream('s', '/events', new Map(), undefined, sink, host, maxBuffer, policy);
  stream.open();
  return { stream, told };
}

const frame = (text: string, size: number): Buffer => Buffer.from(text.padEnd(size - 2, '.') + '\n\n');

describe('SseStream write queue', () => {
  it('writes what one turn queued in one write', async () => {
    const sink = new HeldSink(1024);
    const { stream } = open(sink, 1 << 20, 'disconnect');
    stream.write(frame('a', 10));
    stream.write(frame('b', 10));
    stream.write(frame('c', 10));
    expect(sink.chunks).toHaveLength(0);
    await nextTurn();
    expect(sink.chunks).toHaveLength(1);
    expect(sink.text()).toBe(frame('a', 10).toString() + frame('b', 10).toString() + frame('c', 10).toString());
  });

  it('stops writing when write() returns false and goes on after drain, in one write', async () => {
    const sink = new HeldSink(16);
    const { stream } = open(sink, 1 << 20, 'disconnect');
    stream.write(frame('a', 20));
    await nextTurn();
    expect(sink.chunks).toHaveLength(1);
    expect(sink.writableNeedDrain).toBe(true);
    stream.write(frame('b', 20));
    stream.write(frame('c', 20));
    await nextTurn();
    // blocked: nothing more reaches the sink until it drains
    expect(sink.chunks).toHaveLength(1);
    expect(stream.bufferedBytes).toBe(60);
    const drained = new Promise((resolve) => sink.once('drain', resolve));
    sink.release();
    await drained;
    await nextTurn();
    expect(sink.chunks.map(String)).toEqual([frame('a', 20).toString(), frame('b', 20).toString() + frame('c', 20).toString()]);
    expect(stream.isOpen).toBe(true);
  });

  it("ends a client that falls more than maxBufferSize behind under 'disconnect'", async () => {
    const sink = new HeldSink(16);
    const { stream, told } = open(sink, 100, 'disconnect');
    stream.write(frame('a', 40));
    await nextTurn();
    stream.write(frame('b', 40)); // 40 in the sink + 40 queued: within 100
    expect(stream.isOpen).toBe(true);
    stream.write(frame('c', 40)); // 120: over
    expect(stream.isOpen).toBe(false);
    expect(told.closed).toEqual(['slow']);
    expect(sink.destroyed).toBe(true);
    expect(told.dropped).toBe(0);
  });

  it("drops the oldest queued events of a client behind under 'drop-oldest', and sends the rest", async () => {
    const sink = new HeldSink(16);
    const { stream, told } = open(sink, 100, 'drop-oldest');
    stream.write(frame('a', 40));
    await nextTurn();
    stream.write(frame('b', 40));
    stream.write(frame('c', 40)); // b goes to make room for c
    expect(stream.isOpen).toBe(true);
    expect(stream.dropped).toBe(1);
    expect(told.dropped).toBe(1);
    stream.write(frame('d', 40)); // c goes for d
    expect(stream.dropped).toBe(2);
    const drained = new Promise((resolve) => sink.once('drain', resolve));
    sink.release();
    await drained;
    await nextTurn();
    expect(sink.text()).toBe(frame('a', 40).toString() + frame('d', 40).toString());
    expect(told.closed).toEqual([]);
  });

  it("ends even a 'drop-oldest' client when one event alone is larger than maxBufferSize", () => {
    const sink = new HeldSink(16);
    const { stream, told } = open(sink, 100, 'drop-oldest');
    stream.write(frame('big', 101));
    expect(stream.isOpen).toBe(false);
    expect(told.closed).toEqual(['slow']);
  });

  it('writes what is queued before ending on close()', async () => {
    const sink = new HeldSink(1024);
    const { stream, told } = open(sink, 1 << 20, 'disconnect');
    stream.write(frame('a', 10));
    stream.close();
    expect(told.closed).toEqual(['server']);
    expect(sink.writableEnded).toBe(true);
    expect(sink.text()).toBe(frame('a', 10).toString());
  });
});
