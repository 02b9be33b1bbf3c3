import type { SseEnvelope, SseReplayResult } from '@nest-sse/core';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import { withTimeout, type RedisConnections } from './redis.connections.js';
import { compareStreamIds, decodeEntry, entriesOf, isStreamId } from './redis-envelope.js';
import type { RedisKeys } from './redis.keys.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { redisFailure } from './redis-failure.js';
import { REPLAY, type ScriptClient } from './redis.scripts.js';

/** A replay's answer, and the last Stream id it read (all of the Stream, up to then). */
interface Replay {
  result: SseReplayResult;
  through?: string;
}

/**
 * Replay for `Last-Event-ID`: one script run finds the events after a Stream id or a publisher's
 * own id in the Stream, or says why they cannot be had.
 */
export class RedisHistory {
  private readonly replays = new Map<string, Promise<Replay>>();

  /**
   * `readThrough(id)` resolves once this node's reader has delivered `id`; `delivered()` is the
   * last id it delivered.
   */
  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedRedisOptions,
    private readonly readThrough: (id: string) => Promise<void>,
    private readonly delivered: () => string,
  ) {}

  async replay(afterId: string, limit: number): Promise<SseReplayResult> {
    // The caller's stream was registered before this call: what this node delivered until now did
    // not reach it, so the history it gets must reach at least that far.
    const delivered = this.delivered();
    // Clients reconnecting together mostly ask for the same id: one script run serves them all,
    // as long as it read the Stream late enough for each of them.
    const key = `${limit}\n${afterId}`;
    let running = this.replays.get(key);
    if (running === undefined) {
      running = this.run(afterId, limit).finally(() => this.replays.delete(key));
      this.replays.set(key, running);
    }
    const shared = await running;
    if (shared.through === undefined || compareStreamIds(shared.through, delivered) >= 0) return shared.result;
    // It read the Stream before this node delivered what this caller missed: read again, for it alone.
    return (await this.run(afterId, limit)).result;
  }

  /**
   * Runs the replay script (see REPLAY) on `keys` after the Stream id `after`. A Redis that is
   * connected but does not answer (frozen, or busy with a long script) must not hold a resuming
   * stream for ever: past publishTimeout it is unavailable, like one that is down, and so is one
   * failing over (`RedisUnavailableError`: the client comes back later). A reply waiting cannot
   * change is thrown as it is: the history cannot be had (the client is reset).
   */
  async runReplay(keys: string[], after: string, count: number, what: string): Promise<[string, string, unknown]> {
    const commands = this.connections.commands;
    if (commands === undefined || this.connections.closed) throw new RedisUnavailableError('RedisTransport is not running.');
    return (await withTimeout(
      REPLAY.run(commands as ScriptClient, keys, [after, count, this.options.historyMaxAge]),
      this.options.publishTimeout,
      'the replay',
    ).catch((err: unknown) => {
      const failure = redisFailure(err);
      if (!failure.transient) throw err;
      throw new RedisUnavailableError(`Cannot replay ${what} now: ${failure.reason}.`, {
        retryAfter: failure.retryAfter,
        cause: err,
      });
    })) as [string, string, unknown];
  }

  private async run(afterId: string, limit: number): Promise<Replay> {
    const commands = this.connections.commands;
    if (commands === undefined || this.connections.closed) throw new RedisUnavailableError('RedisTransport is not running.');
    if (!(await this.connections.whenReady(commands, this.options.publishTimeout))) {
      throw new RedisUnavailableError(
        `Redis was unreachable for ${this.options.publishTimeout} ms; cannot replay after ${afterId}.`,
      );
    }
    const streamId = isStreamId(afterId) ? afterId : '';
    // The history is the last historySize events (the Stream may hold more, see MIN_RETAINED).
    const max = Math.max(1, Math.min(limit, this.options.historySize));
    const reply = await this.runReplay([this.keys.events, this.keys.eventId(afterId)], streamId, max + 1, `after ${afterId}`);
    if (reply[0] === 'reset') {
      const reason = reply[1] === 'expired' || reply[1] === 'lost' ? reply[1] : 'unknown';
      return { result: { status: 'reset', reason } };
    }
    const entries = entriesOf(reply[2]);
    if (entries.length > max) return { result: { status: 'reset', reason: 'expired' } };
    // This node's reader must deliver everything up to the end of what was read before the stream
    // opens: the hub holds those live events and skips the ones replayed, or at or before the replay
    // point (the client had them from the node it came from; see compareIds). Any later live event
    // would otherwise write again what the replay wrote.
    const through = entries.length > 0 ? entries[entries.length - 1][0] : reply[1];
    await this.readThrough(through);
    const events: SseEnvelope[] = [];
    for (const [id, fields] of entries) {
      const envelope = decodeEntry(id, fields);
      // Junk was already reported by the reader; targeted sends are never replayed.
      if (typeof envelope !== 'string' && envelope.target === undefined) events.push(envelope);
    }
    return { result: { status: 'ok', events, after: reply[1] }, through };
  }
}
