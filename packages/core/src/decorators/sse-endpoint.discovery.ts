import type { DiscoveryService } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { SSE_ENDPOINT_METADATA } from '../sse.constants.js';
import type { SseEndpointClass, SseEndpointDefinition } from './sse-endpoint.definition.js';

/** The definition `@SseEndpoint` put on a class, if any. */
export function getSseEndpoint(target: SseEndpointClass): SseEndpointDefinition | undefined {
  return Reflect.getMetadata(SSE_ENDPOINT_METADATA, target);
}

/** Every controller class of the app decorated with `@SseEndpoint`, with its definition and wrapper. */
export function* sseEndpoints(
  discovery: DiscoveryService,
): Generator<[target: SseEndpointClass, definition: SseEndpointDefinition, wrapper: InstanceWrapper]> {
  for (const wrapper of discovery.getControllers()) {
    const target = wrapper.metatype as SseEndpointClass | undefined;
    const definition = target && getSseEndpoint(target);
    if (definition) yield [target, definition, wrapper];
  }
}
