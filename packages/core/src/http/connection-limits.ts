import { HttpException, HttpStatus } from '@nestjs/common';
import type { SseMetadata } from '../connection/metadata-rules.js';
import type { ClusterCounts } from '../hub/cluster-counts.js';
import type { LocalStreams } from '../hub/local-streams.js';
import type { SseNodeStats } from '../interfaces/sse-transport.interface.js';
import { tooManyConnections } from '../sse.messages.js';

/** The connection limits that apply to one endpoint's streams. */
export interface SseConnectionLimits {
  /** The module's `maxConnections`: the whole app. */
  app?: number;
  /** The endpoint's `maxConnections`. */
  endpoint?: number;
  /** The endpoint's `maxConnectionsPerKey`. */
  perKey?: { key: string; max: number };
}

/**
 * Refuses (429) a stream that would go over a connection limit, counted across the cluster on a
 * distributed transport: this node's exact counts plus the other nodes' last reported ones (at
 * most about a second old).
 */
export async function checkConnectionLimits(
  limits: SseConnectionLimits,
  path: string,
  metadata: SseMetadata,
  streams: LocalStreams,
  counts: ClusterCounts,
): Promise<void> {
  const { app, endpoint, perKey } = limits;
  if (app === undefined && endpoint === undefined && perKey === undefined) return;
  const registry = streams.registry;
  const others = await counts.others();
  const elsewhere = (count: (node: SseNodeStats) => number | undefined): number =>
    others.reduce((sum, node) => sum + (count(node) ?? 0), 0);
  if (app !== undefined && registry.size + elsewhere((n) => n.connected) >= app) {
    throw new HttpException(tooManyConnections('in this app', app), HttpStatus.TOO_MANY_REQUESTS);
  }
  if (endpoint !== undefined && registry.endpointSize(path) + elsewhere((n) => n.endpoints[path]) >= endpoint) {
    throw new HttpException(tooManyConnections(`on ${path}`, endpoint), HttpStatus.TOO_MANY_REQUESTS);
  }
  if (perKey !== undefined) {
    for (const value of metadata.get(perKey.key) ?? []) {
      if (registry.countByValue(perKey.key, value) + elsewhere((n) => n.keys?.[perKey.key]?.[value]) >= perKey.max) {
        throw new HttpException(tooManyConnections(`for this ${perKey.key}`, perKey.max), HttpStatus.TOO_MANY_REQUESTS);
      }
    }
  }
}
