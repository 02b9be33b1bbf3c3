import type { SseEndpointOptions } from '../interfaces/sse-endpoint-options.interface.js';

/** What `@SseEndpoint` records on the class. */
export interface SseEndpointDefinition {
  /** Normalized path, for example `/events`. */
  path: string;
  options: SseEndpointOptions;
  target: SseEndpointClass;
}

/** A class, as Nest's own decorators take it (`ClassDecorator`'s `Function`). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- the type TypeScript gives a decorated class
export type SseEndpointClass = Function;
