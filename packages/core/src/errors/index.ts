export * from './sse-configuration.error.js';
export * from './sse-event.error.js';
export * from './sse-transport-unavailable.error.js';
export * from './sse-lifecycle.error.js';
