/* eslint-disable @typescript-eslint/no-explicit-any -- prom-client is an optional peer: core has no types of it */
/**
 * The part of a prom-client `Registry` the metrics use; typed here so that core needs no
 * prom-client types.
 */
export interface SseMetricsRegistry {
  registerMetric(metric: any): void;
  removeSingleMetric(name: string): void;
  getSingleMetric(name: string): any;
  readonly contentType?: string;
}

/**
 * Options of `SseMetricsModule.forRoot(options)`.
 *
 * @publicApi
 */
export interface SseMetricsOptions {
  /**
   * The prom-client registry to register on.
   * @default prom-client's default registry (`register`)
   */
  registry?: SseMetricsRegistry;
  /**
   * Prefix of every metric name: letters, digits, `_` and `:`, not starting with a digit.
   * @default 'nest_sse_'
   */
  prefix?: string;
}

/**
 * A transport may implement this to have its own state exported as
 * `nest_sse_transport{backend, metric}` (for example Redis: `connected` 0/1, `reconnects`,
 * `lag_ms`); a `connected` value also drives `nest_sse_transport_up`.
 */
export interface SseTransportMetricsSource {
  metrics(): Record<string, number> | Promise<Record<string, number>>;
}
