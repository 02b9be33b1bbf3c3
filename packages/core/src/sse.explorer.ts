import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { getSseEndpoint, type SseEndpointDefinition } from './decorators/sse-endpoint.decorator.js';
import { SseConfigurationError } from './errors/sse-configuration.error.js';
import { SseHub } from './sse.hub.js';
import { duplicateEndpoint, routePublic } from './sse.messages.js';

/** @internal Every controller class of the app decorated with `@SseEndpoint`, with its definition. */
export function* sseEndpoints(discovery: DiscoveryService): Generator<[target: Function, definition: SseEndpointDefinition]> {
  for (const wrapper of discovery.getControllers()) {
    const target = wrapper.metatype as Function | undefined;
    const definition = target && getSseEndpoint(target);
    if (definition) yield [target, definition];
  }
}

/**
 * Finds every `@SseEndpoint` class at start-up: prepares its runtime (so options are checked
 * before the first request), refuses two endpoints on one path, and warns about public routes.
 * @internal
 */
@Injectable()
export class SseExplorer implements OnModuleInit {
  private readonly logger = new Logger('SseModule');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly hub: SseHub,
  ) {}

  onModuleInit(): void {
    const seen = new Map<string, string>();
    for (const [target, definition] of sseEndpoints(this.discovery)) {
      const other = seen.get(definition.path);
      if (other !== undefined && other !== target.name) {
        throw new SseConfigurationError(duplicateEndpoint(definition.path, other, target.name));
      }
      seen.set(definition.path, target.name);
      const runtime = this.hub.endpointFor(definition);
      for (const route of runtime.publicRoutes()) this.logger.warn(routePublic(route));
    }
  }
}
