import { Logger } from '@nestjs/common';
import type { SseClusterStats, SseNodeStats, SseTransportContext } from '@nest-sse/core';
import { withTimeout, type RedisConnections } from './redis.connections.js';
import type { RedisKeys } from './redis.keys.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { READ_STATS, WRITE_STATS, type ScriptClient } from './redis.scripts.js';

/**
 * Each node keeps its connection counts in Redis under an expiring lease and renews it; the stats
 * route reads every live node's counts in one script run, and a node that stopped renewing drops
 * out within its lease.
 */
export class RedisNodeStats {
  private readonly logger = new Logger('RedisTransport');
  private context: SseTransportContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastStats = '';
  private lastStatsAt = 0;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedRedisOptions,
  ) {}

  /** Writes this node's counts once, then keeps them current. */
  async start(context: SseTransportContext): Promise<void> {
    this.context = context;
    await this.write();
    this.timer = setInterval(() => void this.write(), this.options.statsEvery);
    this.timer.unref();
  }

  /** Stops writing this node's counts. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Stops writing and removes this node's counts, if Redis can be reached within a second. */
  async leave(): Promise<void> {
    this.stop();
    const context = this.context;
    const commands = this.connections.commands;
    if (context === undefined || commands?.status !== 'ready') return;
    await withTimeout(
      WRITE_STATS.run(
        commands as ScriptClient,
        [this.keys.nodes, this.keys.stats],
        [context.nodeId, '', this.options.leaseMs, this.keyTtl()],
      ),
      1000,
      'leaving the stats',
    ).catch(() => undefined);
  }

  /** Every live node's counts, this node's first (as it is now); this node alone when Redis cannot answer. */
  async read(): Promise<SseClusterStats> {
    const local = this.context?.localStats();
    const nodes: SseNodeStats[] = [];
    try {
      const commands = this.connections.readyCommands();
      const reply = (await withTimeout(
        READ_STATS.run(commands as ScriptClient, [this.keys.nodes, this.keys.stats], []),
        Math.min(this.options.publishTimeout, 2000),
        'reading the stats',
      )) as string[];
      for (let i = 0; i + 1 < reply.length; i += 2) {
        if (reply[i] === local?.node) continue;
        const stats = parseStats(reply[i], reply[i + 1]);
        if (stats !== undefined) nodes.push(stats);
      }
    } catch (err) {
      this.logger.warn(`Cluster stats unavailable (${(err as Error).message}); reporting this node only.`);
    }
    if (local !== undefined) nodes.unshift(local);
    return { backend: 'redis', nodes };
  }

  /** Writes this node's counts when they changed, and renews the lease when a third of it is gone. */
  private async write(): Promise<void> {
    const context = this.context;
    const commands = this.connections.commands;
    if (context === undefined || commands === undefined || commands.status !== 'ready') return;
    const { updatedAt: _, ...counts } = context.localStats();
    const json = JSON.stringify(counts);
    const now = Date.now();
    if (json === this.lastStats && now - this.lastStatsAt < this.options.leaseMs / 3) return;
    try {
      await WRITE_STATS.run(
        commands as ScriptClient,
        [this.keys.nodes, this.keys.stats],
        [context.nodeId, JSON.stringify({ ...counts, updatedAt: now }), this.options.leaseMs, this.keyTtl()],
      );
      this.lastStats = json;
      this.lastStatsAt = now;
    } catch (err) {
      if (!this.connections.closed) this.logger.warn(`Could not write this node's stats: ${(err as Error).message}`);
    }
  }

  /** Both stats keys outlive every lease, and vanish once no node has written for a while. */
  private keyTtl(): number {
    return Math.max(3 * this.options.leaseMs, 60_000);
  }
}

function parseStats(node: string, json: string): SseNodeStats | undefined {
  try {
    const value = JSON.parse(json);
    if (value === null || typeof value !== 'object' || typeof value.connected !== 'number') return undefined;
    return {
      node,
      connected: value.connected,
      endpoints: value.endpoints !== null && typeof value.endpoints === 'object' ? value.endpoints : {},
      keys: value.keys,
      updatedAt: typeof value.updatedAt === 'number' ? value.updatedAt : 0,
    };
  } catch {
    return undefined;
  }
}
