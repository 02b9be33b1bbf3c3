export * from './sse-stream-token.js';
