/* eslint-disable @typescript-eslint/no-explicit-any -- prom-client is an optional peer loaded with import(): core has no types of it */
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { SseConfigurationError } from '../errors/sse-configuration.error.js';
import type { SseCounters } from '../hub/sse-node.js';
import { SseTransport } from '../interfaces/sse-transport.interface.js';
import { SseHub } from '../sse.hub.js';
import type { SseMetricsOptions, SseMetricsRegistry, SseTransportMetricsSource } from './sse-metrics-options.interface.js';
import { metricTaken, promClientMissing } from './sse-metrics.messages.js';

/** Injection token of the options given to `SseMetricsModule.forRoot`. */
export const SSE_METRICS_OPTIONS = 'SSE_METRICS_OPTIONS';

const OPENMETRICS = 'application/openmetrics-text';

/** Counters read from `SseHub.counters`: name (without prefix), help, and what they count. */
const COUNTERS: Array<[name: string, help: string, key: keyof SseCounters]> = [
  ['events_published_total', 'Broadcasts this node published.', 'published'],
  ['events_delivered_total', 'Events this node wrote to its streams, one per recipient.', 'delivered'],
  ['events_dropped_total', "Events dropped for slow clients under the 'drop-oldest' policy.", 'dropped'],
  ['slow_disconnects_total', 'Streams ended because the client fell behind.', 'slowDisconnects'],
  ['replays_total', 'Connections that resumed with a Last-Event-ID.', 'replays'],
  ['replayed_events_total', 'Events replayed to resuming connections.', 'replayedEvents'],
  [
    'resets_total',
    'Connections sent sse.reset: their Last-Event-ID could not be resumed, or events they were owed were lost.',
    'resets',
  ],
  ['connections_opened_total', 'Streams opened.', 'opened'],
  ['connections_closed_total', 'Streams closed, whatever the reason.', 'closed'],
];

/**
 * Exposes the hub's counts as Prometheus metrics through prom-client. Every value is read at
 * scrape time (collect callbacks over `SseHub.counters` and `SseHub.localStats()`), so
 * broadcasting and writing cost nothing more with metrics on.
 *
 * prom-client is loaded with a dynamic `import()` when the module starts: apps that do not use
 * metrics need not install it.
 *
 * @publicApi
 */
@Injectable()
export class SseMetrics implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('SseMetrics');
  private readonly names: string[] = [];
  private registry: SseMetricsRegistry | undefined;
  private ready = false;

  constructor(
    private readonly hub: SseHub,
    @Inject(SSE_METRICS_OPTIONS) private readonly options: SseMetricsOptions,
    @Inject(SseTransport) private readonly transport: SseTransport,
  ) {
    this.hub.ready.then(
      () => (this.ready = true),
      () => undefined,
    );
  }

  /** Names of the metrics registered, with their prefix. */
  get metricNames(): readonly string[] {
    return this.names;
  }

  async onModuleInit(): Promise<void> {
    const prom = await loadPromClient();
    const registry: SseMetricsRegistry = this.options.registry ?? prom.register;
    this.registry = registry;
    const prefix = this.options.prefix ?? 'nest_sse_';
    // OpenMetrics output appends _total to counters itself
    const counterName = (name: string) =>
      prefix + (registry.contentType?.startsWith(OPENMETRICS) ? name.replace(/_total$/, '') : name);
    const hub = this.hub;
    const counters = hub.counters;
    const register = <T>(name: string, make: (name: string) => T): T => {
      if (registry.getSingleMetric(name) !== undefined) throw new SseConfigurationError(metricTaken(name));
      const metric = make(name);
      this.names.push(name);
      return metric;
    };

    register(
      prefix + 'connections',
      (name) =>
        new prom.Gauge({
          name,
          help: 'Open streams on this node, by endpoint path.',
          labelNames: ['endpoint'],
          registers: [registry],
          collect(this: any) {
            this.reset();
            for (const [endpoint, count] of Object.entries(hub.localStats().endpoints)) this.set({ endpoint }, count);
          },
        }),
    );

    for (const [suffix, help, key] of COUNTERS) {
      register(
        counterName(suffix),
        (name) =>
          new prom.Counter({
            name,
            help,
            registers: [registry],
            collect(this: any) {
              this.reset();
              this.inc(counters[key]);
            },
          }),
      );
    }

    const logger = this.logger;
    let lastCluster = { connections: 0, nodes: 0 };
    // cluster_connections and cluster_nodes read one hub.stats() per scrape
    const readCluster = oncePerScrape(async () => {
      try {
        const stats = await hub.stats();
        lastCluster = { connections: stats.connected_clients, nodes: stats.nodes.length };
      } catch (err) {
        // keep the last value: one slow backend must not fail the whole scrape
        logger.warn(`Reading cluster stats for metrics failed: ${(err as Error).message}`);
      }
      return lastCluster;
    });
    register(
      prefix + 'cluster_connections',
      (name) =>
        new prom.Gauge({
          name,
          help: 'Open streams on every live node of the cluster, as the transport reports them.',
          registers: [registry],
          async collect(this: any) {
            this.set((await readCluster()).connections);
          },
        }),
    );
    register(
      prefix + 'cluster_nodes',
      (name) =>
        new prom.Gauge({
          name,
          help: 'Live nodes of the cluster, as the transport reports them.',
          registers: [registry],
          async collect(this: any) {
            this.set((await readCluster()).nodes);
          },
        }),
    );

    const transport = this.transport as Partial<SseTransportMetricsSource> & { backend: string };
    const isReady = () => this.ready;
    // transport_up and transport read the same values in one scrape: one call, shared
    const readTransport = oncePerScrape(async (): Promise<Record<string, number>> => {
      if (typeof transport.metrics !== 'function') return {};
      try {
        return (await transport.metrics()) ?? {};
      } catch (err) {
        logger.warn(`Reading transport metrics failed: ${(err as Error).message}`);
        return { connected: 0 };
      }
    });
    register(
      prefix + 'transport_up',
      (name) =>
        new prom.Gauge({
          name,
          help: 'Whether the transport is started and, when it reports it, connected (1) or not (0).',
          labelNames: ['backend'],
          registers: [registry],
          async collect(this: any) {
            const { connected } = await readTransport();
            this.set({ backend: transport.backend }, isReady() && (connected === undefined || connected > 0) ? 1 : 0);
          },
        }),
    );
    if (typeof transport.metrics === 'function') {
      register(
        prefix + 'transport',
        (name) =>
          new prom.Gauge({
            name,
            help: 'Values the transport reports about itself (for example Redis reconnects or lag).',
            labelNames: ['backend', 'metric'],
            registers: [registry],
            async collect(this: any) {
              const values = await readTransport();
              this.reset();
              for (const [metric, value] of Object.entries(values)) {
                if (typeof value === 'number' && Number.isFinite(value)) this.set({ backend: transport.backend, metric }, value);
              }
            },
          }),
      );
    }
  }

  onModuleDestroy(): void {
    for (const name of this.names.splice(0)) this.registry?.removeSingleMetric(name);
  }
}

/**
 * `load` shared by the collect callbacks of one scrape: prom-client starts every metric's
 * collect at once, so a call while one is pending gets that call's answer; a call after it
 * settled (the next scrape) loads again.
 */
function oncePerScrape<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= load().finally(() => {
      pending = undefined;
    }));
}

interface PromClient {
  register: SseMetricsRegistry;
  Gauge: new (config: any) => any;
  Counter: new (config: any) => any;
}

async function loadPromClient(): Promise<PromClient> {
  let mod: any;
  try {
    // A variable specifier keeps bundlers and TypeScript from treating prom-client as a hard dependency.
    const specifier = 'prom-client';
    mod = await import(specifier);
  } catch (err) {
    throw new SseConfigurationError(promClientMissing((err as Error)?.message ?? String(err)));
  }
  const prom = mod?.Gauge ? mod : mod?.default;
  if (!prom?.Gauge || !prom?.Counter || !prom?.register) {
    throw new SseConfigurationError(promClientMissing('the module has no Gauge, Counter or register export'));
  }
  return prom as PromClient;
}
