export * from './connection-registry.js';
export * from './heartbeat.scheduler.js';
export * from './sse-stream.js';
