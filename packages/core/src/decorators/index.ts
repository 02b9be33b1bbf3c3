export { SseEndpoint } from './sse-endpoint.decorator.js';
export { getSseEndpoint } from './sse-endpoint.discovery.js';
export type { SseEndpointDefinition } from './sse-endpoint.definition.js';
