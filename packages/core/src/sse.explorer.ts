import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, DiscoveryService, ModulesContainer } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { getSseEndpoint, placeRoutes, type SseEndpointDefinition } from './decorators/sse-endpoint.decorator.js';
import { SseConfigurationError } from './errors/sse-configuration.error.js';
import { mappedPaths } from './http/sse-routes.js';
import { SseHub } from './sse.hub.js';
import { SseModule } from './sse.module.js';
import { assertSingleHub } from './sse.single-hub.js';
import { duplicateEndpoint, routePublic } from './sse.messages.js';

/** Every controller class of the app decorated with `@SseEndpoint`, with its definition and wrapper. */
export function* sseEndpoints(
  discovery: DiscoveryService,
): Generator<[target: Function, definition: SseEndpointDefinition, wrapper: InstanceWrapper]> {
  for (const wrapper of discovery.getControllers()) {
    const target = wrapper.metatype as Function | undefined;
    const definition = target && getSseEndpoint(target);
    if (definition) yield [target, definition, wrapper];
  }
}

/**
 * Finds every `@SseEndpoint` class at start-up: prepares its runtime (so options are checked
 * before the first request), refuses two endpoints on one path, and warns about public routes.
 */
@Injectable()
export class SseExplorer implements OnModuleInit {
  private readonly logger = new Logger('SseModule');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly hub: SseHub,
    private readonly modules: ModulesContainer,
    private readonly config: ApplicationConfig,
  ) {
    // Before Nest maps the routes (it does so after every instance is made): a @Controller(path)
    // applied above @SseEndpoint replaced the path the decorator set; put the endpoint's path on
    // its routes again.
    for (const [, definition] of sseEndpoints(discovery)) placeRoutes(definition);
  }

  onModuleInit(): void {
    assertSingleHub(this.modules, SseModule);
    const seen = new Map<string, string>();
    for (const [target, definition, wrapper] of sseEndpoints(this.discovery)) {
      const other = seen.get(definition.path);
      if (other !== undefined && other !== target.name) {
        throw new SseConfigurationError(duplicateEndpoint(definition.path, other, target.name));
      }
      seen.set(definition.path, target.name);
      const runtime = this.hub.endpointFor(definition);
      runtime.routes = mappedPaths(this.config, this.modules.applicationId, wrapper);
      this.hub.nameEndpoint(definition.path, runtime.routes.stream);
      for (const route of runtime.publicRoutes()) this.logger.warn(routePublic(route));
    }
  }
}
