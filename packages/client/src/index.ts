export { backoffDelay } from './backoff.js';
export { LAST_EVENT_ID_QUERY } from './event-source.connection.js';
export * from './sse-client-options.interface.js';
export { SSE_RESET_EVENT } from './shared-source.js';
export { SseClient, parseData } from './sse-client.js';
