import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit, Optional } from '@nestjs/common';
import { AbstractHttpAdapter, ApplicationConfig, DiscoveryService, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { placeRoutes } from './decorators/sse-endpoint.decorator.js';
import { sseEndpoints } from './decorators/sse-endpoint.discovery.js';
import { SseConfigurationError } from './errors/sse-configuration.error.js';
import { expressBodyReader, fastifyBodyReader, type BroadcastLimit } from './http/sse-body.js';
import type { SseEndpointRuntime } from './http/sse-endpoint.runtime.js';
import { SseEndpointRuntimes } from './http/sse-endpoint-runtimes.js';
import { expressRequestTurn, fastifyRequestTurn } from './http/request-turn.js';
import { mappedPaths, routeMatches } from './http/sse-routes.js';
import { probeSocketTake } from './http/socket-take.js';
import { assertSingleHub } from './sse.single-hub.js';
import { duplicateEndpoint, routePublic, writePath } from './sse.messages.js';

/**
 * Finds every `@SseEndpoint` class at start-up: prepares its runtime (so options are checked
 * before the first request), refuses two endpoints on one path, and warns about public routes.
 */
@Injectable()
export class SseExplorer implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('SseModule');
  private readonly runtimes: SseEndpointRuntime[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly endpoints: SseEndpointRuntimes,
    private readonly modules: ModulesContainer,
    private readonly config: ApplicationConfig,
    @Optional() adapterHost?: HttpAdapterHost,
  ) {
    // Before Nest maps the routes (it does so after every instance is made): a @Controller(path)
    // applied above @SseEndpoint replaced the path the decorator set; put the endpoint's path on
    // its routes again.
    for (const [, definition] of sseEndpoints(discovery)) placeRoutes(definition);
    // The adapter is there before the app's middleware and Nest's body parsers (in app.init()):
    // the request turn and the body reader go first.
    adapterHost?.init$.subscribe(() => this.installRequestHooks(adapterHost.httpAdapter));
  }

  /**
   * A request pipelined on an HTTP/1.1 connection is handed to the app only when its turn comes,
   * never behind an event stream (see `awaitTurn`). Broadcast bodies are read by `readBody`
   * (limit by the bytes read and decoded) ahead of the framework's parser; the route checks that
   * it was (see `SseEndpointRuntime.broadcast`).
   */
  private installRequestHooks(adapter: AbstractHttpAdapter): void {
    const limitFor: BroadcastLimit = (method, path) => (method === 'POST' ? this.broadcastLimit(path) : undefined);
    const type = adapter?.getType?.();
    if (type === 'express') {
      adapter.use(expressRequestTurn(expressBodyReader(limitFor)));
    } else if (type === 'fastify') {
      const fastify = adapter.getInstance();
      fastify.addHook('onRequest', fastifyRequestTurn());
      fastify.addHook('preParsing', fastifyBodyReader(limitFor));
    }
  }

  /**
   * `maxBodySize` of the endpoint whose broadcast route Nest serves at `path` (global prefix,
   * RouterModule, version included), matched as Express matches: any case, a trailing slash, a
   * `:name` segment for any one segment.
   */
  private broadcastLimit(path: string): number | undefined {
    let key = path.toLowerCase();
    if (key.length > 1 && key.endsWith('/')) key = key.slice(0, -1);
    for (const runtime of this.runtimes) {
      if (runtime.routes?.broadcast.some((route) => routeMatches(route, key))) return runtime.options.maxBodySize;
    }
    return undefined;
  }

  onModuleInit(): void {
    assertSingleHub(this.modules);
    const seen = new Map<string, string>();
    for (const [target, definition, wrapper] of sseEndpoints(this.discovery)) {
      const other = seen.get(definition.path);
      if (other !== undefined && other !== target.name) {
        throw new SseConfigurationError(duplicateEndpoint(definition.path, other, target.name));
      }
      seen.set(definition.path, target.name);
      const runtime = this.endpoints.for(definition);
      this.runtimes.push(runtime);
      this.endpoints.place(runtime, mappedPaths(this.config, this.modules.applicationId, wrapper));
      for (const route of runtime.publicRoutes()) this.logger.warn(routePublic(route));
    }
  }

  /** Says once which way stream bytes go, and why (see "Where the bytes go" in the README). */
  async onApplicationBootstrap(): Promise<void> {
    if (this.runtimes.length === 0) return;
    const through = this.runtimes.filter((runtime) => runtime.options.directSocket === false).map((runtime) => runtime.path);
    const problem = through.length === this.runtimes.length ? undefined : await probeSocketTake();
    this.logger.log(writePath(problem, through, this.runtimes.length));
  }
}
