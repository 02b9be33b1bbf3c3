export * from './connection/sse-stream.js';
export * from './decorators/index.js';
export * from './encoding/index.js';
export * from './errors/index.js';
export * from './interfaces/index.js';
export * from './metrics/index.js';
export * from './openapi/index.js';
export * from './transports/index.js';
export type { SseBroadcastResponse, SseEndpointStatsResponse } from './http/sse-endpoint.runtime.js';
export { SseHub, normalizeFilter } from './sse.hub.js';
export type { SseCounters, SseHubStats } from './sse.hub.js';
export { SseModule } from './sse.module.js';
export {
  LAST_EVENT_ID_QUERY,
  SSE_ENDPOINT_METADATA,
  SSE_MODULE_OPTIONS,
  SSE_RESET_EVENT,
} from './sse.constants.js';
