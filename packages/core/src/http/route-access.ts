import { ForbiddenException, NotFoundException } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants.js';
import type { SseEndpointClass } from '../decorators/sse-endpoint.definition.js';
import type { SseRouteAccess } from '../interfaces/sse-endpoint-options.interface.js';
import { SSE_BROADCAST_HANDLER, SSE_STATS_HANDLER } from '../sse.constants.js';
import { routeClosed } from '../sse.messages.js';

/** Whether a generated route answers: open, closed for want of a guard (403), or disabled (404). */
export type SseRouteState = boolean | 'disabled';

/**
 * Who may call the stats or broadcast route of an endpoint: `access` says, and `'guarded'` (the
 * default) opens the route only when a guard protects it, on the class or on the route.
 */
export function routeState(
  access: SseRouteAccess = 'guarded',
  target: SseEndpointClass,
  key: 'stats' | 'broadcast',
): SseRouteState {
  if (access === 'disabled') return 'disabled';
  if (access === 'public' || access === 'global-guards') return true;
  const member = key === 'stats' ? SSE_STATS_HANDLER : SSE_BROADCAST_HANDLER;
  const classGuards: unknown[] = Reflect.getMetadata(GUARDS_METADATA, target) ?? [];
  const routeGuards: unknown[] = Reflect.getMetadata(GUARDS_METADATA, target.prototype[member]) ?? [];
  return classGuards.length + routeGuards.length > 0;
}

/** Throws the 403 (or 404) of a route that is not open; `route` is its method and full path. */
export function assertRouteOpen(state: SseRouteState, route: string, target: SseEndpointClass, key: 'stats' | 'broadcast'): void {
  if (state === true) return;
  if (state === 'disabled') throw new NotFoundException(`Cannot ${route}`);
  throw new ForbiddenException(routeClosed(route, target.name, key));
}
