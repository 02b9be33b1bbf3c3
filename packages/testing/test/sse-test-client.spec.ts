import { describe, it, expect } from '@jest/globals';
import { SseConfigurationError } from '@nest-sse/core';
import { SseTestClient, type EventSourceLike } from '@nest-sse/testing';

/** An EventSource that opens on the next turn and emits what the test tells it to. */
class FakeEventSource implements EventSourceLike {
  static last: FakeEventSource;
  readyState = 0;
  onopen: ((ev: any) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;
  private readonly listeners = new Map<string, Array<(ev: any) => void>>();

  constructor(readonly url: string) {
    FakeEventSource.last = this;
    setImmediate(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }

  addEventListener(type: string, listener: (ev: any) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  emit(type: string, data: string, id = ''): void {
    for (const listener of this.listeners.get(type) ?? []) listener({ data, lastEventId: id });
  }

  close(): void {
    this.readyState = 2;
  }
}

const open = async () => {
  const client = await SseTestClient.connect('http://127.0.0.1:1', '/feed', { EventSource: FakeEventSource, events: ['tick'] });
  return { client, source: FakeEventSource.last };
};

describe('SseTestClient waits', () => {
  it('waitForCount counts the events already received and those to come, and resolves with them', async () => {
    const { client, source } = await open();
    expect(client.opens).toBe(1);
    source.emit('tick', '1', 'a-1');
    source.emit('message', 'other');
    const pending = client.waitForCount(3, 'tick');
    source.emit('tick', '2', 'a-2');
    source.emit('tick', '3', 'a-3');
    const ticks = await pending;
    expect(ticks.map((e) => e.data)).toEqual(['1', '2', '3']);
    expect((await client.waitFor('tick')).id).toBe('a-1');
    expect(await client.waitForCount(4)).toHaveLength(4);
    client.close();
  });

  it('close() rejects a pending waitForCount at once, not at its timeout', async () => {
    const { client, source } = await open();
    const pending = client.waitForCount(2, 'tick', { timeout: 10_000 });
    const waiting = client.waitFor((event) => event.data === 'never', { timeout: 10_000 });
    source.emit('tick', '1');
    const started = Date.now();
    client.close();
    await expect(pending).rejects.toThrow('SseTestClient closed');
    await expect(waiting).rejects.toThrow('SseTestClient closed');
    // at once: well before the 10 s timeouts, with room for a busy machine
    expect(Date.now() - started).toBeLessThan(5000);
    expect(source.readyState).toBe(2);
  });

  it('rejects after its timeout, saying what it waited for and what arrived', async () => {
    const { client, source } = await open();
    source.emit('tick', '1');
    await expect(client.waitForCount(2, 'tick', { timeout: 50 })).rejects.toThrow(
      /Timed out after 50 ms waiting for 2 'tick' events \(got 1\) from http:\/\/127\.0\.0\.1:1\/feed; received: tick/,
    );
    client.close();
  });
});

describe('SseTestClient options', () => {
  it('refuses a misspelt option, naming the nearest one, and values that cannot work', async () => {
    const refused = (options: object) =>
      SseTestClient.connect('http://127.0.0.1:1', '/feed', { EventSource: FakeEventSource, ...options } as any).then(
        () => {
          throw new Error('expected connect to reject');
        },
        (err: Error) => err,
      );
    const typo = await refused({ header: { authorization: 'Bearer x' } });
    expect(typo).toBeInstanceOf(SseConfigurationError);
    expect(typo.message).toBe(
      'SseTestClient.connect options: header is not a known option; did you mean headers? Known options: EventSource, events, headers, openTimeout.',
    );
    expect((await refused({ openTimeout: NaN })).message).toBe(
      'SseTestClient.connect options: openTimeout is NaN; it must be an integer from 1 to 2147483647 (ms).',
    );
    // a string would be spread into its letters, and 'update' never collected
    expect((await refused({ events: 'update' })).message).toMatch(
      /events is "update"; it must be a list, each item an event name/,
    );
    expect((await refused({ headers: { 'x-n': 1 } })).message).toMatch(
      /headers is an object; it must be an object of header names to strings/,
    );
  });

  it('refuses wait options that would be ignored or cannot work', async () => {
    const { client } = await open();
    await expect(client.waitFor('tick', { timout: 100 } as any)).rejects.toThrow(
      /^SseTestClient\.waitFor options: timout is not a known option; did you mean timeout\?/,
    );
    await expect(client.waitForCount(0, 'tick')).rejects.toThrow(
      /^SseTestClient\.waitForCount: count is 0; it must be an integer of at least 1\.$/,
    );
    await expect(client.waitForCount(1, 'tick', { timeout: -1 })).rejects.toThrow(/timeout is -1/);
    client.close();
  });
});
