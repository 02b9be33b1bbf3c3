export * from './auth/index.js';
export * from './connection/sse-stream.js';
export * from './decorators/index.js';
export * from './encoding/index.js';
export * from './errors/index.js';
export * from './interfaces/index.js';
export * from './metrics/index.js';
export * from './openapi/index.js';
export * from './transports/index.js';
export * from './validation/index.js';
export type { SseBroadcastResponse, SseEndpointStatsResponse } from './http/sse-endpoint.runtime.js';
export { SseHub, normalizeFilter } from './sse.hub.js';
export type { SseCounters, SseHubStats, SseStreamCloseMessage, SseStreamOpenMessage } from './sse.hub.js';
export { SseModule } from './sse.module.js';
export {
  LAST_EVENT_ID_QUERY,
  SSE_ENDPOINT_METADATA,
  SSE_MODULE_OPTIONS,
  SSE_RESET_EVENT,
  SSE_STREAM_CLOSE_CHANNEL,
  SSE_STREAM_OPEN_CHANNEL,
} from './sse.constants.js';
