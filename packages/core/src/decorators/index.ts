export * from './sse-endpoint.decorator.js';
