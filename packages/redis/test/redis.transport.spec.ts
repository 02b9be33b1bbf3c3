import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { SseConfigurationError, type SseEnvelope, type SseTransportContext } from '@nest-sse/core';
import { RedisTransport, RedisUnavailableError, type RedisTransportOptions } from '@nest-sse/redis';
import { eventually, sleep } from '../../../test/utils/app.js';
import { RedisServer, freePort } from '../../../test/utils/redis-server.js';
import { escapeKeyPart } from '../src/redis.keys.js';
import { draft, LogRecorder } from './parts.js';

/** A node as the transport sees it: a delivery callback that records, and fixed counts. */
function node(id: string, connected = 0) {
  const delivered: SseEnvelope[] = [];
  const context: SseTransportContext = {
    nodeId: id,
    deliver: (envelope) => delivered.push(envelope),
    localStats: () => ({
      node: id,
      connected,
      endpoints: connected ? { '/events': connected } : ({} as Record<string, number>),
      updatedAt: Date.now(),
    }),
  };
  return { context, delivered };
}

describe('RedisTransport', () => {
  let server: RedisServer;
  let admin: Redis;
  const open: RedisTransport[] = [];
  const logs = new LogRecorder();
  let prefixes = 0;

  async function transport(id: string, options: RedisTransportOptions = {}, connected = 0) {
    const t = new RedisTransport({ url: server.url, prefix: `unit${prefixes}`, ...options });
    open.push(t);
    const n = node(id, connected);
    await t.start(n.context);
    return { t, ...n };
  }

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url);
    Logger.overrideLogger(logs);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
    prefixes++;
  });

  afterAll(async () => {
    Logger.overrideLogger(false);
    admin?.disconnect();
    await server?.stop();
  });

  it('delivers every publish to every node, its own included, in one order, with Stream ids', async () => {
    const a = await transport('a');
    const b = await transport('b');
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => a.t.publish(draft(`a${i}`))));
    for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
    await eventually(() => a.delivered.length === 300 && b.delivered.length === 300, 10_000, 'delivery');
    expect(a.delivered.map((e) => e.data)).toEqual(ids.map((_, i) => `a${i}`));
    expect(b.delivered.map((e) => e.id)).toEqual(ids);
    expect(a.delivered[0]).toMatchObject({ origin: 'test', data: 'a0' });
  });

  it('appends the broadcasts of one turn in one script run, chained and resumable by publisher id', async () => {
    const a = await transport('a');
    const evalshaCalls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await evalshaCalls();
    const ids = await Promise.all(
      Array.from({ length: 100 }, (_, i) => a.t.publish(draft(`b${i}`, i % 10 === 0 ? { eventId: `pub-${i}` } : {}))),
    );
    // 100 broadcasts made in one turn: two runs of at most 64 (the counts did not change, so no
    // stats write runs in between)
    expect((await evalshaCalls()) - before).toBe(2);
    const entries = await admin.xrange(a.t.keys.events, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(ids);
    entries.forEach(([, fields], i) => expect(fields[1]).toBe(i === 0 ? '' : ids[i - 1]));
    const fromPublisher = await a.t.replay('pub-50', 100);
    expect(fromPublisher.status === 'ok' && fromPublisher.events.map((e) => e.data)).toEqual(
      Array.from({ length: 49 }, (_, i) => `b${51 + i}`),
    );
  });

  it('keeps the publisher id, filter, endpoint and target of an envelope', async () => {
    const a = await transport('a');
    await a.t.publish(
      draft('x', { eventId: 'evt-1', event: 'update', endpoint: '/c', filter: { channel: ['news'] }, target: 'conn-1' }),
    );
    await eventually(() => a.delivered.length === 1);
    expect(a.delivered[0]).toMatchObject({
      eventId: 'evt-1',
      event: 'update',
      endpoint: '/c',
      filter: { channel: ['news'] },
      target: 'conn-1',
    });
  });

  it('replays after a Stream id and after a publisher id, never a targeted send', async () => {
    const a = await transport('a');
    const first = await a.t.publish(draft('1', { eventId: 'mine/1 {x}' }));
    await a.t.publish(draft('2'));
    await a.t.publish(draft('secret', { target: 'someone' }));
    const last = await a.t.publish(draft('3'));
    const byStream = await a.t.replay(first, 100);
    expect(byStream.status).toBe('ok');
    expect(byStream.status === 'ok' && byStream.events.map((e) => e.data)).toEqual(['2', '3']);
    expect(byStream.status === 'ok' && byStream.after).toBe(first);
    const byPublisher = await a.t.replay('mine/1 {x}', 100);
    expect(byPublisher.status === 'ok' && byPublisher.events.map((e) => e.data)).toEqual(['2', '3']);
    expect(await a.t.replay(last, 100)).toEqual({ status: 'ok', events: [], after: last });
  });

  it('answers reset: unknown for ids it never gave and ids from the future', async () => {
    const a = await transport('a');
    await a.t.publish(draft('1'));
    expect(await a.t.replay('garbage', 10)).toEqual({ status: 'reset', reason: 'unknown' });
    expect(await a.t.replay('99999999999999-0', 10)).toEqual({ status: 'reset', reason: 'unknown' });
  });

  it('answers reset: expired when more events came after the id than historySize or the limit allow', async () => {
    const a = await transport('a', { historySize: 10 });
    const first = await a.t.publish(draft('first'));
    for (let i = 0; i < 400; i++) await a.t.publish(draft(`n${i}`));
    expect(await a.t.replay(first, 10_000)).toEqual({ status: 'reset', reason: 'expired' });
    const recent = await a.t.publish(draft('recent'));
    await a.t.publish(draft('a'));
    await a.t.publish(draft('b'));
    expect(await a.t.replay(recent, 1)).toEqual({ status: 'reset', reason: 'expired' });
    const ok = await a.t.replay(recent, 2);
    expect(ok.status === 'ok' && ok.events.map((e) => e.data)).toEqual(['a', 'b']);
  });

  // historyMaxAge is 1 s in these two: what must stay (the events published after the wait) stays
  // unless a replay comes more than a second after them, which no loaded machine makes of two round trips
  it('answers reset: expired when an event after the id is older than historyMaxAge', async () => {
    const a = await transport('a', { historyMaxAge: 1000 });
    const first = await a.t.publish(draft('1'));
    await a.t.publish(draft('2'));
    // the age itself is what is waited for: a timer never fires early, and Redis reads the same clock
    await sleep(1200);
    expect(await a.t.replay(first, 10)).toEqual({ status: 'reset', reason: 'expired' });
    const fresh = await a.t.publish(draft('3'));
    expect(await a.t.replay(fresh, 10)).toEqual({ status: 'ok', events: [], after: fresh });
  });

  it('replays when the entry of the id itself expired but the next one names it', async () => {
    const a = await transport('a', { historyMaxAge: 1000 });
    const first = await a.t.publish(draft('1'));
    await sleep(1200);
    await a.t.publish(draft('2'));
    await a.t.publish(draft('3'));
    // '1' is trimmed as too old; '2' says it came right after it, so nothing after the id is gone
    const replay = await a.t.replay(first, 10);
    expect(replay.status === 'ok' && replay.events.map((e) => e.data)).toEqual(['2', '3']);
    expect(await admin.xlen(a.t.keys.events)).toBe(2);
  });

  it('tells a broadcast whose reply was lost with the connection that it may still be delivered', async () => {
    const own = await RedisServer.start();
    try {
      const a = new RedisTransport({ url: own.url, prefix: 'lost', publishTimeout: 3000 });
      open.push(a);
      await a.start(node('a').context);
      const probe = new Redis(own.url);
      const pid = Number(/process_id:(\d+)/.exec(await probe.info('server'))![1]);
      probe.disconnect();
      // the script is written to a connection that still works, Redis never answers, and then
      // the connection drops
      process.kill(pid, 'SIGSTOP');
      const publish = a.publish(draft('in doubt'));
      await eventually(() => a.metrics().unconfirmed_publishes === 1, 10_000, 'the broadcast to be on the wire');
      expect(a.metrics()).toMatchObject({ commands_connected: 1, pending_publishes: 0 });
      process.kill(pid, 'SIGKILL');
      await expect(publish).rejects.toThrow(/may or may not be delivered/);
    } finally {
      await own.stop();
    }
  });

  it('drops and logs entries it did not write, and goes on delivering', async () => {
    const a = await transport('a');
    const key = a.t.keys.events;
    await admin.xadd(key, '*', 'foo', 'bar');
    await admin.xadd(key, '*', 'e', '{"data": "trunc');
    await admin.xadd(key, '*', 'e', '{"data": 5, "origin": "x", "seq": 1, "time": 1}');
    await admin.xadd(key, '*', 'e', '{"data": "ok", "origin": "x", "seq": 1, "time": 1, "filter": {"k": [{}]}}');
    await a.t.publish(draft('after junk'));
    await eventually(() => a.delivered.length === 1, 10_000, 'the good event');
    expect(a.delivered[0].data).toBe('after junk');
    const dropped = logs.lines.filter((line) => line.includes('Dropped Stream entry'));
    expect(dropped.join('\n')).toMatch(/no 'e' field[\s\S]*not JSON[\s\S]*data is not a string[\s\S]*filter\.k/);
    expect(a.t.metrics()).toMatchObject({ connected: 1, dropped_entries: 4, pending_publishes: 0 });
  });

  it('reports every live node in cluster stats and forgets one that says goodbye', async () => {
    const a = await transport('node-a', { cleanupInterval: 2 }, 3);
    const b = await transport('node-b', { cleanupInterval: 2 }, 5);
    const stats = await a.t.clusterStats();
    expect(stats.backend).toBe('redis');
    expect(stats.nodes.map((n) => [n.node, n.connected]).sort()).toEqual([
      ['node-a', 3],
      ['node-b', 5],
    ]);
    await b.t.close();
    const after = await a.t.clusterStats();
    expect(after.nodes.map((n) => n.node)).toEqual(['node-a']);
  });

  it('drops a node from the stats once its lease runs out', async () => {
    const a = await transport('node-a', { cleanupInterval: 1 });
    const keys = a.t.keys;
    // A node that died without a goodbye: its entry is there with a lease in the past.
    await admin.zadd(keys.nodes, Date.now() - 10, 'ghost');
    await admin.hset(keys.stats, 'ghost', JSON.stringify({ connected: 7, endpoints: {}, updatedAt: 1 }));
    expect((await a.t.clusterStats()).nodes.map((n) => n.node)).toEqual(['node-a']);
    // and the next stats write of a live node removes what the dead one left
    await eventually(
      async () => !(await admin.hexists(keys.stats, 'ghost')) && (await admin.zscore(keys.nodes, 'ghost')) === null,
    );
  });

  it('keeps prefixes apart', async () => {
    const a = await transport('a', { prefix: 'one' });
    const b = await transport('b', { prefix: 'two' });
    await a.t.publish(draft('for one'));
    await b.t.publish(draft('for two'));
    // each node reads its Stream in order: once its own second event is there, the other's would be too
    await a.t.publish(draft('end one'));
    await b.t.publish(draft('end two'));
    await eventually(() => a.delivered.some((e) => e.data === 'end one') && b.delivered.some((e) => e.data === 'end two'));
    expect(a.delivered.map((e) => e.data)).toEqual(['for one', 'end one']);
    expect(b.delivered.map((e) => e.data)).toEqual(['for two', 'end two']);
    expect((await a.t.clusterStats()).nodes.map((n) => n.node)).toEqual(['a']);
  });

  it('uses a client the app passed in and leaves it open on close', async () => {
    const client = new Redis(server.url);
    const a = await transport('a', { client, url: undefined });
    await a.t.publish(draft('via app client'));
    await eventually(() => a.delivered.length === 1);
    await a.t.close();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    const clients = String(await admin.client('LIST'));
    expect(clients).not.toMatch(/name=nest-sse:reader/);
    client.disconnect();
  });

  it('keeps order when Redis forgets the publish script mid-stream', async () => {
    const a = await transport('a');
    const b = await transport('b');
    const calls: Array<Promise<string>> = [];
    const publish = () => calls.push(a.t.publish(draft(`n${calls.length}`)));
    for (let round = 0; round < 3; round++) {
      await admin.script('FLUSH');
      // a long pipeline whose NOSCRIPT replies come back in several reads, and new broadcasts
      // made between those reads
      for (let i = 0; i < 1500; i++) publish();
      for (let i = 0; i < 40; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        for (let j = 0; j < 10; j++) publish();
      }
      await Promise.all(calls);
    }
    const total = calls.length;
    await eventually(() => b.delivered.length === total, 10_000, `all ${total}`);
    expect(b.delivered.map((e) => e.data)).toEqual(Array.from({ length: total }, (_, i) => `n${i}`));
  });

  it('refuses bad options with a message that says what to change', () => {
    expect(() => new RedisTransport({ prefix: 'has space' })).toThrow(SseConfigurationError);
    expect(() => new RedisTransport({ prefix: 'x}{y' })).toThrow(/letters, digits/);
    expect(() => new RedisTransport({ historySize: 0 })).toThrow(/historySize is 0; it must be an integer of at least 1/);
    expect(escapeKeyPart('a:b{c}%')).toBe('a%3Ab%7Bc%7D%25');
    expect(escapeKeyPart('é')).toBe('%u00E9');
    expect(escapeKeyPart('%u00E9')).not.toBe(escapeKeyPart('é'));
  });

  it('fails to start, naming where it looked, when Redis is not there', async () => {
    const port = await freePort();
    const t = new RedisTransport({ url: `redis://user:secret@127.0.0.1:${port}`, connectTimeout: 300 });
    const error = await t.start(node('x').context).catch((err) => err);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.message).toContain(`redis://127.0.0.1:${port}`);
    expect(error.message).not.toContain('secret');
    await t.close();
  });

  it('holds a broadcast while Redis is down and sends it once Redis is back; refuses it after publishTimeout', async () => {
    const a = await transport('a', { publishTimeout: 30_000 });
    const b = await transport('b');
    await a.t.publish(draft('before'));
    await eventually(() => b.delivered.length === 1);
    await server.kill();
    // Broadcast only once the transport has seen the connection go: one made while it still reads
    // ready is written to the dead socket, which is the case of the test above.
    await eventually(() => a.t.metrics().commands_connected === 0, 10_000, 'the transport to notice the outage');
    const held = a.t.publish(draft('during'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(a.t.metrics()).toMatchObject({
      connected: 0,
      commands_connected: 0,
      outages: 1,
      pending_publishes: 1,
      unconfirmed_publishes: 0,
    });
    await server.launch();
    const id = await held;
    await eventually(() => b.delivered.length === 2 && a.delivered.length === 2, 30_000, 'delivery after the restart');
    expect(b.delivered.map((e) => e.data)).toEqual(['before', 'during']);
    expect(b.delivered[1].id).toBe(id);

    const quick = await transport('c', { publishTimeout: 300 });
    await server.kill();
    await eventually(() => quick.t.metrics().commands_connected === 0, 10_000, 'the transport to notice the outage');
    const refused = await quick.t.publish(draft('lost')).catch((err) => err);
    expect(refused).toBeInstanceOf(RedisUnavailableError);
    expect(refused.message).toMatch(/was not sent and will not be delivered/);
    await server.launch();
    // and it is not: the node's next broadcast (made once it is back, or it too would wait only
    // 300 ms) arrives, and nothing before it
    await eventually(() => quick.t.metrics().commands_connected === 1, 30_000, 'the transport to reconnect');
    await quick.t.publish(draft('after'));
    await eventually(() => b.delivered.length === 3, 30_000, 'the broadcast after the refused one');
    expect(b.delivered.map((e) => e.data)).toEqual(['before', 'during', 'after']);
  });
});
