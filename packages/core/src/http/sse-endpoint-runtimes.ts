import { Inject, Injectable } from '@nestjs/common';
import type { SseEndpointDefinition } from '../decorators/sse-endpoint.definition.js';
import { ClusterCounts } from '../hub/cluster-counts.js';
import { EndpointNames } from '../hub/endpoint-names.js';
import { LocalStreams } from '../hub/local-streams.js';
import { SseNode } from '../hub/sse-node.js';
import { StreamDrain } from '../hub/stream-drain.js';
import { StreamReplay } from '../hub/stream-replay.js';
import type { SseModuleOptions } from '../interfaces/sse-module-options.interface.js';
import { SseHub } from '../sse.hub.js';
import { SSE_MODULE_OPTIONS } from '../sse.constants.js';
import { SseEndpointRuntime, type SseEndpointParts } from './sse-endpoint.runtime.js';
import type { SseRoutePaths } from './sse-routes.js';

/**
 * The runtime of every `@SseEndpoint` of the app, each made on first use (at start-up by the
 * explorer, so options are checked before the first request) with the hub's parts it works with.
 */
@Injectable()
export class SseEndpointRuntimes {
  private readonly runtimes = new Map<SseEndpointDefinition, SseEndpointRuntime>();
  private readonly parts: SseEndpointParts;

  constructor(
    @Inject(SSE_MODULE_OPTIONS) moduleOptions: SseModuleOptions,
    hub: SseHub,
    node: SseNode,
    streams: LocalStreams,
    replay: StreamReplay,
    counts: ClusterCounts,
    private readonly drain: StreamDrain,
    private readonly names: EndpointNames,
  ) {
    this.parts = { hub, moduleOptions, node, streams, replay, counts };
  }

  /** The runtime of one endpoint. */
  for(definition: SseEndpointDefinition): SseEndpointRuntime {
    let runtime = this.runtimes.get(definition);
    if (runtime === undefined) {
      runtime = new SseEndpointRuntime(definition, this.parts);
      this.runtimes.set(definition, runtime);
      this.drain.setRetry(runtime.path, runtime.options.retry);
    }
    return runtime;
  }

  /** Records where Nest serves an endpoint's routes, so `broadcast({ endpoint })` takes its full paths too. */
  place(runtime: SseEndpointRuntime, routes: SseRoutePaths): void {
    runtime.routes = routes;
    this.names.add(runtime.path, routes.stream);
  }

  /** Every runtime made so far. */
  all(): IterableIterator<SseEndpointRuntime> {
    return this.runtimes.values();
  }
}
