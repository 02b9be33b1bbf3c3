export * from './sse-endpoint-options.interface.js';
export * from './sse-message.interface.js';
export * from './sse-module-options.interface.js';
export * from './sse-transport.interface.js';
export * from './sse-route-responses.interface.js';
