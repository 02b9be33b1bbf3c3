import type { SseEndpointOptions } from '../interfaces/sse-endpoint-options.interface.js';

/** What `@SseEndpoint` records on the class. */
export interface SseEndpointDefinition {
  /** Normalized path, for example `/events`. */
  path: string;
  options: SseEndpointOptions;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- any class, as Nest's own decorators take it
  target: Function;
}
