export * from './sse-test-client.js';
