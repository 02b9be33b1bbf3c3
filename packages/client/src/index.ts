export { backoffDelay, retryAfterDelay } from './backoff.js';
export { isFinalStatus } from './connection.js';
export { LAST_EVENT_ID_QUERY, SSE_RESET_EVENT } from './protocol.js';
export * from './sse-client-options.interface.js';
export { SseParser, type SseParserSink } from './sse-parser.js';
export { SseClient, parseData } from './sse-client.js';
