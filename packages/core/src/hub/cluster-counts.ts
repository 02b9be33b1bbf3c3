import { Inject, Injectable } from '@nestjs/common';
import { SseTransport, type SseNodeStats } from '../interfaces/sse-transport.interface.js';
import { LocalStreams } from './local-streams.js';
import { SseNode } from './sse-node.js';

/** Answer of `SseHub.stats()`. */
export interface SseHubStats {
  connected_clients: number;
  timestamp: string;
  backend: string;
  endpoints: Record<string, number>;
  nodes: Array<{ node: string; connected_clients: number; endpoints: Record<string, number> }>;
}

/** How old the other nodes' counts may be when a connection limit is checked. */
const OTHERS_TTL = 1000;

/**
 * Connection counts: this node's (which the transport reports for it), the other nodes' (for
 * cluster-wide connection limits), and the whole cluster's (for `stats()`).
 */
@Injectable()
export class ClusterCounts {
  /** Metadata keys whose per-value counts this node reports (per-key connection limits). */
  private readonly countedKeys = new Set<string>();
  private othersCache: { at: number; promise: Promise<SseNodeStats[]> } | undefined;

  constructor(
    private readonly node: SseNode,
    private readonly streams: LocalStreams,
    @Inject(SseTransport) private readonly transport: SseTransport,
  ) {}

  /** Reports the per-value counts of `key` too (an endpoint's `maxConnectionsPerKey`). */
  countKey(key: string): void {
    this.countedKeys.add(key);
  }

  /** This node's counts. */
  local(): SseNodeStats {
    const registry = this.streams.registry;
    const stats: SseNodeStats = {
      node: this.node.id,
      connected: registry.size,
      endpoints: registry.endpointCounts(),
      updatedAt: Date.now(),
    };
    if (this.countedKeys.size > 0) {
      stats.keys = {};
      for (const key of this.countedKeys) stats.keys[key] = registry.valueCounts(key);
    }
    return stats;
  }

  /** Connection counts of the whole cluster (this node alone on the memory transport). */
  async cluster(): Promise<SseHubStats> {
    const cluster = await this.transport.clusterStats();
    const endpoints: Record<string, number> = {};
    let total = 0;
    const nodes = cluster.nodes.map((node) => {
      total += node.connected;
      for (const [endpoint, count] of Object.entries(node.endpoints)) endpoints[endpoint] = (endpoints[endpoint] ?? 0) + count;
      return { node: node.node, connected_clients: node.connected, endpoints: node.endpoints };
    });
    return { connected_clients: total, timestamp: new Date().toISOString(), backend: cluster.backend, endpoints, nodes };
  }

  /**
   * The other nodes' counts, at most a second old, for cluster-wide connection limits (a
   * single-process transport reports only this node, so there are none). A failed read counts
   * as no other node (fail open: an outage must not refuse every connection).
   */
  others(): Promise<SseNodeStats[]> {
    const now = Date.now();
    if (this.othersCache === undefined || now - this.othersCache.at > OTHERS_TTL) {
      const promise = this.transport.clusterStats().then(
        (cluster) => cluster.nodes.filter((node) => node.node !== this.node.id),
        () => [],
      );
      this.othersCache = { at: now, promise };
    }
    return this.othersCache.promise;
  }
}
