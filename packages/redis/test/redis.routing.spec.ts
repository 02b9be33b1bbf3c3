import { afterEach, describe, expect, it } from '@jest/globals';
import type { SseEnvelope, SseEnvelopeDraft, SseTransportContext } from '@nest-sse/core';
import { RedisTransport, type RedisTransportOptions } from '@nest-sse/redis';
import { eventually } from '../../../test/utils/app.js';
import { draft, useRedisServer } from './parts.js';

/** Sets of values the streams of a test node hold, as the hub would see them (in any order). */
const HOLDERS = [['x', 'y'], ['y', 'x'], ['fresh'], ['one'], ['quiet'], []];

/**
 * A node as a routed transport sees it: what it delivered, with the id each set of values got at
 * that moment (the hub asks while it delivers), and which publishes it was told passed it by.
 */
function node(id: string) {
  const delivered: Array<SseEnvelope & { ids: Map<string, string | undefined> }> = [];
  const passed: SseEnvelopeDraft[] = [];
  const context: SseTransportContext = {
    nodeId: id,
    deliver: (envelope) =>
      delivered.push({
        ...envelope,
        ids: new Map(HOLDERS.map((values) => [values.join(','), envelope.routed ? envelope.routed.idOf(values) : envelope.id])),
      }),
    localStats: () => ({ node: id, connected: 0, endpoints: {}, updatedAt: Date.now() }),
    passed: (d) => passed.push(d),
  };
  return { context, delivered, passed };
}

/** A resuming stream holding `values` under `channel`. */
const holding = (...values: string[]) => ({ getMetadataValues: (key: string) => (key === 'channel' ? values : []) });

describe('RedisTransport with routeBy', () => {
  const open: RedisTransport[] = [];
  let prefixes = 0;
  // registered before the server's hooks: transports close before the server stops
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
    prefixes++;
  });
  const redis = useRedisServer();

  async function transport(id: string, options: RedisTransportOptions = {}) {
    const t = new RedisTransport({ url: redis.server.url, prefix: `routing${prefixes}`, routeBy: 'channel', ...options });
    open.push(t);
    const n = node(id);
    await t.start(n.context);
    return { t, ...n };
  }

  /** The id each delivered envelope gives a stream holding `values` (undefined: not from this delivery). */
  const idsFor = (delivered: Array<{ data: string; ids: Map<string, string | undefined> }>, ...values: string[]) =>
    delivered.map((e) => ({ data: e.data, id: e.ids.get(values.join(',')) })).filter((e) => e.id !== undefined);

  it('replays from a cursor the same events, under the same ids, that the live stream carried', async () => {
    const publisher = await transport('p');
    const reader = await transport('r');
    await reader.t.follow('channel', ['x', 'y']);
    reader.t.hold('channel', 'x', true);
    reader.t.hold('channel', 'y', true);
    const sent = [
      draft('m1'),
      draft('x1', { filter: { channel: ['x'] } }),
      draft('y1', { filter: { channel: ['y'] } }),
      draft('xy', { filter: { channel: ['x', 'y'] } }),
      draft('m2'),
      draft('y2', { filter: { channel: ['y'] } }),
      draft('z1', { filter: { channel: ['z'] } }),
    ];
    // one at a time: each is delivered here before the next is published
    for (const d of sent) {
      await publisher.t.publish(d);
      if (d.data !== 'z1') await eventually(() => reader.delivered.some((e) => e.data === d.data));
    }
    const live = idsFor(reader.delivered, 'y', 'x');
    // the order a stream holds its values in does not matter
    expect(idsFor(reader.delivered, 'x', 'y')).toEqual(live);
    // the broadcast to both comes once, from the Stream of the first value in sorted order (x)
    expect(live.map((e) => e.data)).toEqual(['m1', 'x1', 'y1', 'xy', 'm2', 'y2']);
    expect(reader.delivered.map((e) => e.data)).not.toContain('z1');
    for (const e of live) expect(e.id!.length).toBeLessThanOrEqual(128);
    // resuming after each event, on the other node, gives exactly what followed, under the same ids
    for (let i = 0; i < live.length; i++) {
      const result = await publisher.t.replay(live[i].id!, 100, holding('x', 'y'));
      expect(result.status).toBe('ok');
      if (result.status !== 'ok') continue;
      expect(result.events.map((e) => ({ data: e.data, id: e.id }))).toEqual(live.slice(i + 1));
      expect(result.events.every((e) => e.eventId === undefined)).toBe(true);
    }
  });

  it('tells the hub when a publish will not come back to this node, and not when it will', async () => {
    const a = await transport('a');
    await a.t.follow('channel', ['mine']);
    a.t.hold('channel', 'mine', true);
    await a.t.publish(draft('elsewhere', { filter: { channel: ['theirs'] } }));
    await a.t.publish(draft('here', { filter: { channel: ['mine', 'theirs'] } }));
    await a.t.publish(draft('everyone'));
    expect(a.passed.map((d) => d.data)).toEqual(['elsewhere']);
    await eventually(() => a.delivered.some((e) => e.data === 'here'));
  });

  it('resumes a value whose Stream had no entry, and resets when entries after the cursor were trimmed', async () => {
    const a = await transport('a', { historySize: 5, readBatchSize: 2 });
    await a.t.follow('channel', ['fresh']);
    a.t.hold('channel', 'fresh', true);
    await a.t.publish(draft('m'));
    await eventually(() => a.delivered.length === 1);
    const before = a.delivered[0].ids.get('fresh')!;
    // the value had no entry yet: its position is 0-0
    expect(before).toMatch(/\.0-0$/);
    await a.t.publish(draft('f1', { filter: { channel: ['fresh'] } }));
    const resumed = await a.t.replay(before, 100, holding('fresh'));
    expect(resumed.status === 'ok' && resumed.events.map((e) => e.data)).toEqual(['f1']);
    // far more than the history keeps: the first entries after the cursor are gone
    for (let i = 0; i < 400; i++) await a.t.publish(draft(`f${i + 2}`, { filter: { channel: ['fresh'] } }));
    expect(await a.t.replay(before, 1000, holding('fresh'))).toEqual({ status: 'reset', reason: 'expired' });
  });

  it('resets a cursor brought back with other values, a plain id brought to a value, and a cursor to none', async () => {
    const a = await transport('a');
    await a.t.follow('channel', ['one']);
    await a.t.publish(draft('m'));
    await eventually(() => a.delivered.length === 1);
    const cursor = a.delivered[0].ids.get('one')!;
    expect(await a.t.replay(cursor, 10, holding('two'))).toEqual({ status: 'reset', reason: 'unknown' });
    expect(await a.t.replay(cursor, 10, holding('one', 'two'))).toEqual({ status: 'reset', reason: 'unknown' });
    expect(await a.t.replay(a.delivered[0].id, 10, holding('one'))).toEqual({ status: 'reset', reason: 'unknown' });
    expect(await a.t.replay(cursor, 10, holding())).toEqual({ status: 'reset', reason: 'unknown' });
    expect(await a.t.replay(`m.1-0.00000000.zz`, 10, holding('one'))).toEqual({ status: 'reset', reason: 'malformed' });
    // a stream holding no value resumes from plain ids as without routing
    const plain = await a.t.replay(a.delivered[0].id, 10, holding());
    expect(plain).toMatchObject({ status: 'ok', events: [] });
  });

  it("lets a value's Stream go when its history is over, and still resumes its cursors and continues its chain", async () => {
    const a = await transport('a', { historyMaxAge: 1000 });
    const admin = redis.admin;
    await a.t.follow('channel', ['quiet']);
    a.t.hold('channel', 'quiet', true);
    await a.t.publish(draft('q1', { filter: { channel: ['quiet'] } }));
    await eventually(() => a.delivered.some((e) => e.data === 'q1'));
    const cursor = a.delivered.find((e) => e.data === 'q1')!.ids.get('quiet')!;
    const keys = a.t.keys.route('quiet');
    // nobody publishes to it for longer than the history: its Stream goes, its last id stays
    await eventually(async () => (await admin.exists(keys.events)) === 0, 5000, 'the Stream to expire');
    expect(await admin.get(keys.last)).toBe(cursor.split('.').at(-1));
    expect(await a.t.replay(cursor, 10, holding('quiet'))).toMatchObject({ status: 'ok', events: [] });
    // published to again: the chain goes on from the kept id (no loss told), and the cursor resumes
    await a.t.publish(draft('q2', { filter: { channel: ['quiet'] } }));
    await eventually(() => a.delivered.some((e) => e.data === 'q2'));
    const resumed = await a.t.replay(cursor, 10, holding('quiet'));
    expect(resumed.status === 'ok' && resumed.events.map((e) => e.data)).toEqual(['q2']);
    expect(a.t.metrics().routed_lost).toBe(0);
    expect(a.t.metrics().gaps).toBe(0);
  });
});
