import { describe, it, expect, beforeEach } from '@jest/globals';
import { MemoryTransport, type SseEnvelope, type SseEnvelopeDraft } from '@nest-sse/core';

const draft = (data: string, extra: Partial<SseEnvelopeDraft> = {}): SseEnvelopeDraft => ({
  data,
  origin: 'node',
  seq: 0,
  time: Date.now(),
  ...extra,
});

describe('MemoryTransport', () => {
  let transport: MemoryTransport;
  let delivered: SseEnvelope[];

  const start = async (t: MemoryTransport) => {
    delivered = [];
    await t.start({
      nodeId: 'node',
      deliver: (e) => delivered.push(e),
      localStats: () => ({ node: 'node', connected: 0, endpoints: {}, updatedAt: 0 }),
    });
    return t;
  };

  beforeEach(async () => {
    transport = await start(new MemoryTransport({ historySize: 5 }));
  });

  it('assigns ordered ids and delivers synchronously', async () => {
    const publishedA = transport.publish(draft('a'));
    expect(delivered.map((e) => e.data)).toEqual(['a']);
    const publishedB = transport.publish(draft('b'));
    expect(delivered.map((e) => e.data)).toEqual(['a', 'b']);
    const [a, b] = await Promise.all([publishedA, publishedB]);
    expect(a).toMatch(/^[0-9a-z]+-1$/);
    expect(b).toMatch(/^[0-9a-z]+-2$/);
  });

  it('replays what came after an id, oldest first', async () => {
    const ids: string[] = [];
    for (const d of ['a', 'b', 'c', 'd']) ids.push(await transport.publish(draft(d)));
    const result = await transport.replay(ids[1], 100);
    expect(result.status).toBe('ok');
    expect(result.status === 'ok' && result.events.map((e) => e.data)).toEqual(['c', 'd']);
    expect(await transport.replay(ids[3], 100)).toEqual({ status: 'ok', events: [] });
  });

  it('resumes from a publisher-supplied id', async () => {
    await transport.publish(draft('a', { eventId: 'order-1' }));
    await transport.publish(draft('b'));
    const result = await transport.replay('order-1', 100);
    expect(result.status === 'ok' && result.events.map((e) => e.data)).toEqual(['b']);
  });

  it('answers reset for ids it cannot resume from', async () => {
    const first = await transport.publish(draft('0'));
    for (let i = 1; i <= 6; i++) await transport.publish(draft(String(i)));
    expect(await transport.replay(first, 100)).toEqual({ status: 'reset', reason: 'expired' });
    expect(await transport.replay('garbage', 100)).toEqual({ status: 'reset', reason: 'unknown' });
    expect(await transport.replay('abc-3', 100)).toEqual({ status: 'reset', reason: 'unknown' });
    const other = await start(new MemoryTransport());
    expect(await other.replay(first, 100)).toEqual({ status: 'reset', reason: 'unknown' });
  });

  it('forgets events older than historyMaxAge', async () => {
    const aged = await start(new MemoryTransport({ historySize: 10, historyMaxAge: 1000 }));
    const old = await aged.publish(draft('old', { time: Date.now() - 5000 }));
    const older = await aged.publish(draft('old too', { time: Date.now() - 4000 }));
    await aged.publish(draft('new'));
    // 'old too' expired: a client that saw only 'old' missed it
    expect(await aged.replay(old, 100)).toEqual({ status: 'reset', reason: 'expired' });
    // a client that saw 'old too' missed nothing that expired
    const result = await aged.replay(older, 100);
    expect(result.status === 'ok' && result.events.map((e) => e.data)).toEqual(['new']);
  });

  it('never keeps targeted sends in history', async () => {
    const a = await transport.publish(draft('a'));
    await transport.publish(draft('secret', { target: 'conn-1' }));
    await transport.publish(draft('b'));
    const result = await transport.replay(a, 100);
    expect(result.status === 'ok' && result.events.map((e) => e.data)).toEqual(['b']);
  });
});
