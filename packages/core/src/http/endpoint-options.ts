import type { SseEndpointOptions } from '../interfaces/sse-endpoint-options.interface.js';
import type { SseModuleOptions } from '../interfaces/sse-module-options.interface.js';
import { DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_BUFFER, DEFAULT_RETRY } from '../sse.constants.js';

/** An endpoint's options over the module's defaults, with the defaults every route reads filled in. */
export type SseResolvedEndpointOptions = Required<
  Pick<SseEndpointOptions, 'heartbeatInterval' | 'retry' | 'maxBodySize' | 'maxBufferSize' | 'slowClientPolicy'>
> &
  SseEndpointOptions;

/**
 * Merges an endpoint's options over the module's `defaults` once (`metadata` one level deeper:
 * its limits merge one by one) and fills in the library defaults.
 */
export function resolveEndpointOptions(module: SseModuleOptions, own: SseEndpointOptions): SseResolvedEndpointOptions {
  const defaults = module.defaults ?? {};
  const merged = { ...defaults, ...own, metadata: { ...defaults.metadata, ...own.metadata } };
  return {
    ...merged,
    heartbeatInterval: merged.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL,
    retry: merged.retry ?? DEFAULT_RETRY,
    maxBodySize: merged.maxBodySize ?? DEFAULT_MAX_BODY_SIZE,
    maxBufferSize: merged.maxBufferSize ?? DEFAULT_MAX_BUFFER,
    slowClientPolicy: merged.slowClientPolicy ?? 'disconnect',
  };
}
