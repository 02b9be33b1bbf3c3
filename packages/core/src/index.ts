export * from './auth/index.js';
export { SseStream, type SseCloseReason } from './connection/sse-stream.js';
export { metadataKeyProblem, normalizeFilter } from './connection/metadata-rules.js';
export type { NormalizedFilter } from './connection/connection-registry.js';
export * from './decorators/index.js';
export * from './encoding/index.js';
export * from './errors/index.js';
export * from './interfaces/index.js';
export * from './metrics/index.js';
export * from './openapi/index.js';
export * from './transports/index.js';
export * from './validation/index.js';
export type { SseCounters } from './hub/sse-node.js';
export type { SseHubStats } from './hub/cluster-counts.js';
export type { SseStreamCloseMessage, SseStreamOpenMessage } from './hub/local-streams.js';
export { SseHub } from './sse.hub.js';
export { SseModule } from './sse.module.js';
export {
  LAST_EVENT_ID_QUERY,
  SSE_MODULE_OPTIONS,
  SSE_RESET_EVENT,
  SSE_STREAM_CLOSE_CHANNEL,
  SSE_STREAM_OPEN_CHANNEL,
} from './sse.constants.js';
