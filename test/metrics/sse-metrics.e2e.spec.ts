import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import http from 'node:http';
import { Registry } from 'prom-client';
import { SseEndpoint, SseHub, SseMetrics, SseMetricsModule, SseModule } from '@nest-sse/core';
import { connect, eventually, startApp, type TestApp } from '../utils/app.js';

@SseEndpoint('/feed', { heartbeatInterval: 0 })
class FeedController {}

@SseEndpoint('/slow', { heartbeatInterval: 0, welcome: false, maxBufferSize: 64 * 1024, slowClientPolicy: 'disconnect' })
class SlowController {}

@SseEndpoint('/lossy', { heartbeatInterval: 0, welcome: false, maxBufferSize: 64 * 1024, slowClientPolicy: 'drop-oldest' })
class LossyController {}

/** A stream whose reader never reads: the server's queue for it fills up. */
function stalledStream(url: string): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.pause();
      resolve(req);
    });
    req.on('error', () => undefined);
    req.once('error', reject);
  });
}

/** One sample of a metric in the Prometheus text format (0 when absent). */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('SseMetricsModule', () => {
  let t: TestApp;
  let hub: SseHub;
  const registry = new Registry();
  const scrape = () => registry.metrics();

  beforeAll(async () => {
    t = await startApp('express', {
      imports: [SseModule.forRoot({ drainTimeout: 0 }), SseMetricsModule.forRoot({ registry })],
      controllers: [FeedController, SlowController, LossyController],
    });
    hub = t.app.get(SseHub);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('registers the metrics under conventional names with help and type', async () => {
    // the first scrape of the registry: the cluster gauges read one hub.stats() together
    const text = await scrape();
    const names = [
      'nest_sse_connections',
      'nest_sse_events_published_total',
      'nest_sse_events_delivered_total',
      'nest_sse_events_dropped_total',
      'nest_sse_slow_disconnects_total',
      'nest_sse_replays_total',
      'nest_sse_replayed_events_total',
      'nest_sse_resets_total',
      'nest_sse_connections_opened_total',
      'nest_sse_connections_closed_total',
      'nest_sse_cluster_connections',
      'nest_sse_cluster_nodes',
      'nest_sse_transport_up',
    ];
    for (const name of names) {
      expect(text).toContain(`# HELP ${name} `);
    }
    expect(text).toContain('# TYPE nest_sse_events_published_total counter');
    expect(text).toContain('# TYPE nest_sse_connections gauge');
    expect(sample(text, 'nest_sse_transport_up', '{backend="memory"}')).toBe(1);
    expect(sample(text, 'nest_sse_cluster_nodes')).toBe(1);
    expect(t.app.get(SseMetrics).metricNames).toEqual(names);
  });

  it('counts connections, publishes, deliveries, replays and resets from real traffic', async () => {
    const a = await connect(t.url, '/feed', { events: ['connection', 'tick'] });
    const b = await connect(t.url, '/feed', { events: ['connection', 'tick'] });
    let text = await scrape();
    expect(sample(text, 'nest_sse_connections', '{endpoint="/feed"}')).toBe(2);
    expect(sample(text, 'nest_sse_cluster_connections')).toBe(2);
    expect(sample(text, 'nest_sse_cluster_nodes')).toBe(1);
    const opened = sample(text, 'nest_sse_connections_opened_total');
    const closed = sample(text, 'nest_sse_connections_closed_total');

    await hub.broadcastEvent('tick', 1, { endpoint: '/feed' });
    const first = await a.waitFor('tick');
    await b.waitFor('tick');
    await hub.broadcastEvent('tick', 2, { endpoint: '/feed' });
    await hub.broadcastEvent('tick', 3, { endpoint: '/feed' });
    text = await scrape();
    expect(sample(text, 'nest_sse_events_published_total')).toBe(3);
    expect(sample(text, 'nest_sse_events_delivered_total')).toBe(6);

    // one client resumes after the first tick (two replayed), another with a foreign id (reset)
    const resumed = await connect(t.url, `/feed?lastEventId=${first.id}`, { events: ['connection', 'tick'] });
    await resumed.waitForCount(2, 'tick');
    const reset = await connect(t.url, '/feed?lastEventId=elsewhere-1', { events: ['connection', 'sse.reset'] });
    await reset.waitFor('sse.reset');
    text = await scrape();
    expect(sample(text, 'nest_sse_replays_total')).toBe(1);
    expect(sample(text, 'nest_sse_replayed_events_total')).toBe(2);
    expect(sample(text, 'nest_sse_resets_total')).toBe(1);
    expect(sample(text, 'nest_sse_connections_opened_total')).toBe(opened + 2);

    for (const c of [a, b, resumed, reset]) c.close();
    await eventually(
      async () => sample(await scrape(), 'nest_sse_connections', '{endpoint="/feed"}') === 0,
      5000,
      'the gauge to fall',
    );
    expect(sample(await scrape(), 'nest_sse_connections_closed_total')).toBe(closed + 4);
  });

  it('counts slow disconnects and events dropped for slow readers', async () => {
    const slow = await stalledStream(`${t.url}/slow`);
    const lossy = await stalledStream(`${t.url}/lossy`);
    await eventually(() => hub.localStats().endpoints['/slow'] === 1 && hub.localStats().endpoints['/lossy'] === 1);
    const chunk = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 40 && sample(await scrape(), 'nest_sse_slow_disconnects_total') === 0; i++) {
      await hub.broadcast({ event: 'big', data: chunk, endpoint: '/slow' });
      await hub.broadcast({ event: 'big', data: chunk.slice(0, 16 * 1024), endpoint: '/lossy' });
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < 20; i++) await hub.broadcast({ event: 'big', data: chunk.slice(0, 16 * 1024), endpoint: '/lossy' });
    await new Promise((resolve) => setImmediate(resolve));
    const text = await scrape();
    expect(sample(text, 'nest_sse_slow_disconnects_total')).toBe(1);
    // the lossy stream is still open: its drops are counted live
    expect(hub.localStats().endpoints['/lossy']).toBe(1);
    const [lossyStream] = hub.streams('/lossy');
    expect(sample(text, 'nest_sse_events_dropped_total')).toBeGreaterThan(0);
    expect(sample(text, 'nest_sse_events_dropped_total')).toBe(lossyStream.dropped);
    expect(hub.counters.dropped).toBe(lossyStream.dropped);
    slow.destroy();
    lossy.destroy();
  });

  it('refuses a second registration on the same registry, naming the way out', async () => {
    await expect(
      startApp('express', {
        imports: [SseModule.forRoot(), SseMetricsModule.forRoot({ registry })],
        controllers: [],
      }),
    ).rejects.toThrow(/'nest_sse_connections' is already registered.*prefix/);
  });

  it('takes a prefix, and removes its metrics when the app closes', async () => {
    const other = await startApp('express', {
      imports: [SseModule.forRoot(), SseMetricsModule.forRoot({ registry, prefix: 'chat_sse_' })],
      controllers: [],
    });
    expect(await scrape()).toContain('# TYPE chat_sse_events_published_total counter');
    await other.close();
    expect(await scrape()).not.toContain('chat_sse_');
    expect(await scrape()).toContain('nest_sse_connections');
  });
});
