/** Texts of the metrics module's errors. */

export const promClientMissing = (cause: string): string =>
  `SseMetricsModule needs prom-client, an optional peer dependency of @nest-sse/core: ` +
  `npm install prom-client (15 or later). Loading it failed: ${cause}`;

export const metricTaken = (name: string): string =>
  `SseMetricsModule: a metric named '${name}' is already registered on this registry. ` +
  `Pass another registry, or a prefix (SseMetricsModule.forRoot({ prefix: 'myapp_sse_' })).`;
