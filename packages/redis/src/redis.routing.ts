import type {
  SseEnvelope,
  SseEnvelopeDraft,
  SseMetadataView,
  SseReplayResult,
  SseRoutedIds,
  SseTransportContext,
} from '@nest-sse/core';
import { RedisUnavailableError } from './errors/redis-unavailable.error.js';
import {
  covers,
  formatCursor,
  looksLikeCursor,
  parseCursor,
  tagOf,
  MAX_CURSOR_LENGTH,
  type RedisCursor,
} from './redis-cursor.js';
import { withTimeout, type RedisConnections } from './redis.connections.js';
import { compareStreamIds, decodeEntry, entriesOf, isStreamId, lossOf } from './redis-envelope.js';
import type { RedisHistory } from './redis.history.js';
import type { RedisKeys } from './redis.keys.js';
import type { ResolvedRedisOptions } from './redis.options.js';
import { RedisPublisher } from './redis.publisher.js';
import { RedisRouteFollower } from './redis.routes.js';

/** How long a routed value's publisher stays open after its last broadcast, ms. */
const PUBLISHER_IDLE_MS = 60_000;

const RESET_UNKNOWN: SseReplayResult = { status: 'reset', reason: 'unknown' };
const RESET_EXPIRED: SseReplayResult = { status: 'reset', reason: 'expired' };

/** Why one value's history cannot be replayed. */
type LaneReset = 'expired' | 'lost';

/**
 * Routed delivery (`routeBy`): a broadcast whose filter names the route key goes to the Stream
 * and shard channel of each of its values, and a node follows only the values its connections
 * hold (`RedisRouteFollower`). Everything else (broadcasts without the key, targeted sends) stays
 * on the prefix's one Stream, which every node reads.
 *
 * A connection that holds routed values reads several Streams, so its event ids are cursors (see
 * `RedisCursor`): the position in the main Stream and in each of its values' Streams, so that
 * `Last-Event-ID` resumes all of them on any node. A broadcast to several values one connection
 * holds reaches it once: from the Stream of the first of those values in sorted order.
 */
export class RedisRouting {
  readonly follower: RedisRouteFollower;
  private readonly publishers = new Map<string, { publisher: RedisPublisher; usedAt: number }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private nodeId = '';

  constructor(
    readonly key: string,
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedRedisOptions,
    private readonly context: SseTransportContext,
    private readonly history: RedisHistory,
    /** The last entry of the main Stream this node delivered. */
    private readonly mainPosition: () => string,
  ) {
    this.follower = new RedisRouteFollower(
      connections,
      keys,
      options,
      (envelope, value) => this.deliverValue(envelope, value),
      (value) => this.context.lost?.(this.key, value),
    );
  }

  start(nodeId: string): void {
    this.nodeId = nodeId;
    this.sweepTimer = setInterval(() => this.closeIdle(), PUBLISHER_IDLE_MS / 2);
    this.sweepTimer.unref();
  }

  /** Whether a draft goes to routed Streams: it names the route key and is not a targeted send. */
  routes(draft: SseEnvelopeDraft): boolean {
    const values = draft.filter?.[this.key];
    return draft.target === undefined && values !== undefined && values.length > 0;
  }

  /**
   * Publishes to the Stream of each value the filter names, and resolves with the first id. When
   * this node follows none of them, the event does not come back here: the hub is told so.
   */
  async publish(draft: SseEnvelopeDraft): Promise<string> {
    const values = [...new Set(draft.filter![this.key])];
    const ids = await Promise.all(values.map((value) => this.publisherOf(value).publish(draft)));
    if (!values.some((value) => this.follower.follows(value))) this.context.passed?.(draft);
    return ids[0];
  }

  /** Sends what waited for Redis on every value's publisher (Redis is back). */
  flush(): void {
    for (const { publisher } of this.publishers.values()) publisher.flush();
  }

  /** Broadcasts held on this node for routed values, not yet sent. */
  get pending(): number {
    let pending = 0;
    for (const { publisher } of this.publishers.values()) pending += publisher.pending;
    return pending;
  }

  get unconfirmed(): number {
    let unconfirmed = 0;
    for (const { publisher } of this.publishers.values()) unconfirmed += publisher.unconfirmed;
    return unconfirmed;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await Promise.all([...this.publishers.values()].map(({ publisher }) => publisher.close()));
    this.publishers.clear();
    this.follower.stop();
  }

  /** Resolves once this node delivers the events of every one of `values`, or rejects after publishTimeout. */
  async follow(values: readonly string[]): Promise<void> {
    const ready: Promise<unknown> =
      values.length === 1 ? this.follower.prepare(values[0]) : Promise.all(values.map((v) => this.follower.prepare(v)));
    await withTimeout(ready, this.options.publishTimeout, `following ${this.key}`).catch((err: unknown) => {
      if (err instanceof RedisUnavailableError) throw err;
      throw new RedisUnavailableError(`Cannot follow ${this.key}=${values.join(',')} now: ${(err as Error).message}.`, {
        cause: err,
      });
    });
  }

  /** An entry of the main Stream: streams holding routed values get it under their cursor. */
  deliverMain(envelope: SseEnvelope): void {
    // no stream of this node holds a routed value: every id is the plain one
    if (this.follower.size === 0) return this.context.deliver(envelope);
    const plain = envelope.eventId ?? envelope.id;
    const routed: SseRoutedIds = {
      key: this.key,
      idOf: (values) => (values.length === 0 ? plain : this.cursorOf(sortedOf(values), 'm', envelope.id)),
    };
    this.context.deliver({ ...envelope, routed });
  }

  /**
   * An entry of the Stream of `value`: it reaches the streams holding `value` for which `value` is
   * the first of their values the filter names (the others get it from that value's Stream).
   */
  private deliverValue(envelope: SseEnvelope, value: string): void {
    const named = envelope.filter?.[this.key];
    const routed: SseRoutedIds = {
      key: this.key,
      idOf: (values) => {
        const sorted = sortedOf(values);
        if (firstNamed(sorted, named) !== value) return undefined;
        return this.cursorOf(sorted, sorted.indexOf(value), this.mainPosition());
      },
    };
    this.context.deliver({ ...envelope, eventId: undefined, routed });
  }

  /** The cursor of a connection holding `sorted` values, after an event from `from` (main position `main`). */
  private cursorOf(sorted: readonly string[], from: 'm' | number, main: string): string {
    const tag = tagOf(sorted);
    const id = formatCursor({ from, main, tag, values: sorted.map((v) => this.follower.position(v)) });
    // too many values to fit: an id that resumes to sse.reset, never to a partial replay
    return id.length <= MAX_CURSOR_LENGTH ? id : formatCursor({ from: from === 'm' ? 'm' : 0, main, tag, values: [undefined] });
  }

  /** Orders a cursor against a replay's end: 0 when the replay covered it, 1 when it did not. */
  compare(a: string, b: string): number | undefined {
    if (!looksLikeCursor(a) || !looksLikeCursor(b)) return undefined;
    const event = parseCursor(a);
    const after = parseCursor(b);
    return event !== undefined && after !== undefined && covers(after, event) ? 0 : 1;
  }

  /**
   * Replays for a connection holding routed values: the main Stream after the cursor's main
   * position and each value's Stream after its own, merged in Stream id order, each event under
   * the cursor it moves to. A cursor of other values, with a position this node did not know, or
   * past the bound is reset, never replayed in part.
   */
  async replay(afterId: string, limit: number, stream: SseMetadataView): Promise<SseReplayResult | undefined> {
    const held = stream.getMetadataValues(this.key);
    if (held.length === 0) return looksLikeCursor(afterId) ? RESET_UNKNOWN : undefined;
    const values = [...sortedOf(held)];
    const cursor = parseCursor(afterId);
    if (cursor === undefined) return looksLikeCursor(afterId) ? { status: 'reset', reason: 'malformed' } : RESET_UNKNOWN;
    if (cursor.tag !== tagOf(values) || cursor.values.length !== values.length || cursor.values.includes(undefined)) {
      return RESET_UNKNOWN;
    }
    const main = await this.history.replay(cursor.main, limit);
    if (main.status === 'reset') return main;
    const max = Math.max(1, Math.min(limit, this.options.historySize));
    const lanes = await Promise.all(values.map((value, i) => this.valueHistory(value, cursor.values[i]!, max)));
    // a loss says more than a trimmed history: the client is told so when any of its values lost events
    if (lanes.includes('lost')) return { status: 'reset', reason: 'lost' };
    if (lanes.includes('expired')) return RESET_EXPIRED;
    const events = lanes as SseEnvelope[][];
    if (main.events.length + events.reduce((n, lane) => n + lane.length, 0) > max) return RESET_EXPIRED;
    return this.merge(cursor, values, main.events, events);
  }

  private merge(cursor: RedisCursor, values: string[], main: SseEnvelope[], lanes: SseEnvelope[][]): SseReplayResult {
    const tag = cursor.tag;
    const positions = [...cursor.values] as string[];
    let mainAt = cursor.main;
    const heads = lanes.map(() => 0);
    let m = 0;
    const events: SseEnvelope[] = [];
    for (;;) {
      // the next entry in Stream id order: main first on a tie
      let pick = -1;
      let pickId = m < main.length ? main[m].id : undefined;
      for (let i = 0; i < lanes.length; i++) {
        const next = lanes[i][heads[i]];
        if (next !== undefined && (pickId === undefined || compareStreamIds(next.id, pickId) < 0)) {
          pick = i;
          pickId = next.id;
        }
      }
      if (pickId === undefined) break;
      if (pick === -1) {
        const envelope = main[m++];
        mainAt = envelope.id;
        const id = formatCursor({ from: 'm', main: mainAt, tag, values: positions });
        events.push({ ...envelope, id, eventId: undefined });
      } else {
        const envelope = lanes[pick][heads[pick]++];
        positions[pick] = envelope.id;
        if (firstNamed(values, envelope.filter?.[this.key]) !== values[pick]) continue;
        const id = formatCursor({ from: pick, main: mainAt, tag, values: positions });
        events.push({ ...envelope, id, eventId: undefined });
      }
    }
    return { status: 'ok', events, after: formatCursor({ from: 'm', main: mainAt, tag, values: positions }) };
  }

  /**
   * The entries of `value`'s Stream after `position`; or `expired` when some were trimmed (or more
   * than `max` are missed), `lost` when some were lost (a loss marker, or a broken chain).
   */
  private async valueHistory(value: string, position: string, max: number): Promise<SseEnvelope[] | LaneReset> {
    const keys = this.keys.route(value);
    const reply = await this.history.runReplay(
      [keys.events, keys.noEventId, keys.last],
      position,
      max + 1,
      `${this.key}=${value}`,
    );
    if (reply[0] === 'reset') return reply[1] === 'lost' ? 'lost' : 'expired';
    const entries = entriesOf(reply[2]);
    if (entries.some(([, fields]) => lossOf(fields) !== undefined)) return 'lost';
    if (entries.length > max) return 'expired';
    // live events up to what was read must reach this node before the stream opens (see RedisHistory)
    if (entries.length > 0) await this.follower.through(value, entries[entries.length - 1][0], this.options.publishTimeout);
    const events: SseEnvelope[] = [];
    for (const [id, fields] of entries) {
      if (!isStreamId(id)) continue;
      const envelope = decodeEntry(id, fields);
      if (typeof envelope !== 'string') events.push(envelope);
    }
    return events;
  }

  private publisherOf(value: string): RedisPublisher {
    let lane = this.publishers.get(value);
    if (lane === undefined) {
      const publisher = new RedisPublisher(this.connections, this.keys, this.options, this.keys.route(value));
      publisher.start(this.nodeId);
      lane = { publisher, usedAt: 0 };
      this.publishers.set(value, lane);
    }
    lane.usedAt = Date.now();
    return lane.publisher;
  }

  /** Closes the publishers of values not broadcast to for a while (one per value would add up). */
  private closeIdle(): void {
    const before = Date.now() - PUBLISHER_IDLE_MS;
    for (const [value, lane] of this.publishers) {
      if (lane.usedAt < before && lane.publisher.idle) {
        this.publishers.delete(value);
        void lane.publisher.close();
      }
    }
  }
}

/** A connection's routed values in the order cursors name them. */
function sortedOf(values: readonly string[]): readonly string[] {
  return values.length === 1 ? values : [...values].sort();
}

/** The first of a connection's sorted values that a filter names (all of them when it names none). */
function firstNamed(sorted: readonly string[], named: readonly string[] | undefined): string | undefined {
  if (named === undefined) return sorted[0];
  for (const value of sorted) if (named.includes(value)) return value;
  return undefined;
}
