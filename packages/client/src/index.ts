export { backoffDelay, retryAfterDelay } from './backoff.js';
export { LAST_EVENT_ID_QUERY, isFinalStatus } from './connection.js';
export * from './sse-client-options.interface.js';
export { SseParser, type SseParserSink } from './sse-parser.js';
export { SSE_RESET_EVENT } from './shared-source.js';
export { SseClient, parseData } from './sse-client.js';
