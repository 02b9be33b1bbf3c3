import { DynamicModule, Module } from '@nestjs/common';
import type { SseMetricsOptions } from './sse-metrics-options.interface.js';
import { SSE_METRICS_OPTIONS, SseMetrics } from './sse-metrics.js';

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
    return {
      module: SseMetricsModule,
      providers: [{ provide: SSE_METRICS_OPTIONS, useValue: options }, SseMetrics],
      exports: [SseMetrics],
    };
  }
}
