export * from './sse-encoder.js';
