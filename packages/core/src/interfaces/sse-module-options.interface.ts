import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency, Type } from '@nestjs/common';
import type { SseEndpointOptions } from './sse-endpoint-options.interface.js';
import type { SseTransport } from './sse-transport.interface.js';

/**
 * Options of `SseModule.forRoot(options)`. `forRoot(transport)` is short for
 * `forRoot({ transport })`.
 *
 * @publicApi
 */
export interface SseModuleOptions {
  /**
   * The backend that carries broadcasts between nodes.
   * @default new MemoryTransport() (one process)
   */
  transport?: SseTransport;
  /**
   * Defaults for every endpoint; an endpoint's own options win. `access` here may not be
   * `'disabled'`: a route is removed only by the endpoint's own options.
   */
  defaults?: SseEndpointOptions;
  /**
   * Open streams the app accepts across all endpoints (and all nodes, on a distributed
   * transport); more answer 429. An integer of at least 1.
   * @default unlimited
   */
  maxConnections?: number;
  /**
   * Milliseconds over which shutdown ends open streams (spread, with jittered `retry` hints), so
   * clients reconnect elsewhere without a stampede. An integer from 0 (all at once) to 2147483647.
   * @default 1000
   */
  drainTimeout?: number;
  /**
   * Most events replayed to one reconnecting client; a longer gap gets `sse.reset`. An integer
   * of at least 0 (0: never replay).
   * @default 10000
   */
  replayLimit?: number;
  /**
   * How long a broadcast made before the app has started waits for the transport, in ms, before
   * it rejects. An integer from 1 to 2147483647.
   * @default 30000
   */
  readyTimeout?: number;
}

/** A class that makes the module options, for `forRootAsync({ useClass })`. */
export interface SseOptionsFactory {
  createSseOptions(): SseModuleOptions | SseTransport | Promise<SseModuleOptions | SseTransport>;
}

/**
 * Options of `SseModule.forRootAsync`.
 *
 * @publicApi
 */
export interface SseModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => SseModuleOptions | SseTransport | Promise<SseModuleOptions | SseTransport>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useClass?: Type<SseOptionsFactory>;
  useExisting?: Type<SseOptionsFactory>;
  /** Extra providers for the factory's dependencies. */
  extraProviders?: ModuleMetadata['providers'];
}
