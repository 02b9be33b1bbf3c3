import { DynamicModule, Module } from '@nestjs/common';
import type { SseMetricsOptions } from './sse-metrics-options.interface.js';
import { SSE_METRICS_OPTIONS, SseMetrics } from './sse-metrics.js';
import { SseOptionRules as R, validateOptions } from '../validation/options-schema.js';

// a metric name is [a-zA-Z_:][a-zA-Z0-9_:]*; the prefix starts it
const PREFIX = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

const OPTIONS = R.object({
  registry: R.custom(
    'a prom-client Registry (registerMetric, removeSingleMetric, getSingleMetric)',
    (v) =>
      v !== null &&
      typeof v === 'object' &&
      ['registerMetric', 'removeSingleMetric', 'getSingleMetric'].every(
        (m) => typeof (v as Record<string, unknown>)[m] === 'function',
      ),
  ),
  prefix: R.string("the start of a Prometheus metric name: letters, digits, '_' and ':', not starting with a digit", (v) =>
    PREFIX.test(v) ? undefined : '',
  ),
});

/**
 * Prometheus metrics for the SSE hub, through prom-client (an optional peer dependency, loaded
 * when the module starts). Import it next to `SseModule`; serve the registry as you already do
 * (for example a `/metrics` route returning `await register.metrics()`).
 *
 * @example
 * @Module({ imports: [SseModule.forRoot(), SseMetricsModule.forRoot()] })
 * export class AppModule {}
 * @example
 * SseMetricsModule.forRoot({ registry: myRegistry, prefix: 'chat_sse_' })
 * @publicApi
 */
@Module({})
export class SseMetricsModule {
  static forRoot(options: SseMetricsOptions = {}): DynamicModule {
    validateOptions('SseMetricsModule.forRoot options', options, OPTIONS);
    return {
      module: SseMetricsModule,
      providers: [{ provide: SSE_METRICS_OPTIONS, useValue: options }, SseMetrics],
      exports: [SseMetrics],
    };
  }
}
