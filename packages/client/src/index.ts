export { backoffDelay } from './backoff.js';
export { LAST_EVENT_ID_QUERY } from './event-source.connection.js';
export * from './sse-client-options.interface.js';
export { SseClient, SSE_RESET_EVENT, parseData } from './sse-client.js';
