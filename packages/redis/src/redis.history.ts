import type { SseEnvelope, SseReplayResult } from '@nest-sse/core';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import type { RedisConnections } from './redis.connections.js';
import { decodeEntry, entriesOf, isStreamId } from './redis-envelope.js';
import type { RedisKeys } from './redis.keys.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { REPLAY, type ScriptClient } from './redis.scripts.js';

/**
 * Replay for `Last-Event-ID`: one script run finds the events after a Stream id or a publisher's
 * own id in the Stream, or says why they cannot be had.
 */
export class RedisHistory {
  private readonly replays = new Map<string, Promise<SseReplayResult>>();

  /** `readThrough(id)` resolves once this node's reader has delivered `id`. */
  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedRedisOptions,
    private readonly readThrough: (id: string) => Promise<void>,
  ) {}

  replay(afterId: string, limit: number): Promise<SseReplayResult> {
    // Clients reconnecting together mostly ask for the same id: one script run serves them all.
    const key = `${limit}\n${afterId}`;
    let running = this.replays.get(key);
    if (running === undefined) {
      running = this.run(afterId, limit).finally(() => this.replays.delete(key));
      this.replays.set(key, running);
    }
    return running;
  }

  private async run(afterId: string, limit: number): Promise<SseReplayResult> {
    const commands = this.connections.commands;
    if (commands === undefined || this.connections.closed) throw new RedisUnavailableError('RedisTransport is not running.');
    if (!(await this.connections.whenReady(commands, this.options.publishTimeout))) {
      throw new RedisUnavailableError(`Redis was unreachable for ${this.options.publishTimeout} ms; cannot replay after ${afterId}.`);
    }
    const streamId = isStreamId(afterId) ? afterId : '';
    // The history is the last historySize events (the Stream may hold more, see MIN_RETAINED).
    const max = Math.max(1, Math.min(limit, this.options.historySize));
    const reply = (await REPLAY.run(
      commands as ScriptClient,
      [this.keys.events, this.keys.eventId(afterId)],
      [streamId, max + 1, this.options.historyMaxAge],
    )) as [string, string, unknown];
    if (reply[0] === 'reset') return { status: 'reset', reason: reply[1] === 'expired' ? 'expired' : 'unknown' };
    const entries = entriesOf(reply[2]);
    if (entries.length > max) return { status: 'reset', reason: 'expired' };
    // Live events up to the replay point must reach this node before the stream opens, so that the
    // hub can skip them (the client had them from the node it came from); see compareIds.
    await this.readThrough(reply[1]);
    const events: SseEnvelope[] = [];
    for (const [id, fields] of entries) {
      const envelope = decodeEntry(id, fields);
      // Junk was already reported by the reader; targeted sends are never replayed.
      if (typeof envelope !== 'string' && envelope.target === undefined) events.push(envelope);
    }
    return { status: 'ok', events, after: reply[1] };
  }
}
