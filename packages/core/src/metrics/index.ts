export * from './sse-metrics-options.interface.js';
export { SseMetrics, SSE_METRICS_OPTIONS } from './sse-metrics.js';
export { SseMetricsModule } from './sse-metrics.module.js';
