import { SseConfigurationError } from '../errors/sse-configuration.error.js';
import { perKeyUnreachable } from '../sse.messages.js';
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

/**
 * The per-key limit is checked when a stream opens, with the metadata of the query and of
 * `trustedMetadata`: a key that `allowedKeys` drops, with no `trustedMetadata` to give it, is never
 * there, and the limit would never apply (with the defaults' and the endpoint's options merged,
 * only known here).
 */
export function assertKeyReachable(options: SseResolvedEndpointOptions, subject: string): void {
  const key = options.maxConnectionsPerKey!.key;
  const allowed = options.metadata?.allowedKeys;
  if (allowed === undefined || allowed.includes(key) || options.trustedMetadata !== undefined) return;
  throw new SseConfigurationError(perKeyUnreachable(subject, key, allowed), {
    option: 'maxConnectionsPerKey.key',
    value: key,
    rule: 'a key of metadata.allowedKeys, or one that trustedMetadata gives',
  });
}
