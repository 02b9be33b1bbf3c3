/**
 * A prefix is configuration, not input, but it still becomes part of every key: keep it plain.
 * Checked with the other options (see redis-options.validation.ts).
 */
export const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Every key the transport uses, all under one hash tag (`{prefix}`) so that on Redis Cluster
 * they live in one slot and the scripts that touch several of them stay valid.
 */
export class RedisKeys {
  /** The capped Stream: delivery and history. */
  readonly events: string;
  /** Sorted set: node id → lease expiry (ms, Redis clock). */
  readonly nodes: string;
  /** Hash: node id → its last reported counts (JSON). */
  readonly stats: string;
  private readonly base: string;

  constructor(readonly prefix: string) {
    this.base = `{${prefix}}`;
    this.events = `${this.base}:events`;
    this.nodes = `${this.base}:nodes`;
    this.stats = `${this.base}:stats`;
  }

  /** String: a publisher's own event id → the Stream id it was given (expires with the history). */
  eventId(id: string): string {
    return `${this.base}:eid:${escapeKeyPart(id)}`;
  }

  /** Sorted set: one node's recent publishes (seq → Stream id), so a resent publish is not added twice. */
  published(node: string): string {
    return `${this.base}:pub:${escapeKeyPart(node)}`;
  }

  /**
   * The keys of one routed value, under a hash tag of its own (`{prefix/value}`, the value
   * escaped; a prefix has no '/'), so that values spread over a Cluster's slots while a value's
   * Stream, live channel and publish guards stay in one.
   */
  route(value: string): RouteKeys {
    const base = `{${this.prefix}/${escapeKeyPart(value)}}`;
    return {
      events: `${base}:events`,
      live: `${base}:live`,
      noEventId: `${base}:eid`,
      last: `${base}:last`,
      published: (node) => `${base}:pub:${escapeKeyPart(node)}`,
    };
  }
}

/** The keys of one routed value. */
export interface RouteKeys {
  /** Stream: the value's history, each entry naming the one before it. */
  events: string;
  /** Shard channel: each new entry of `events`, for the nodes that follow the value. */
  live: string;
  /**
   * Never written: routed broadcasts keep no publisher ids (their clients resume by cursor), so
   * replaying a value's Stream passes this key, in the value's slot, where the script looks for one.
   */
  noEventId: string;
  /**
   * String: the last id `events` generated, kept a day after its last entry (`events` itself
   * expires with its history), so that a value quiet for longer than the history still resumes.
   */
  last: string;
  /** Sorted set: one node's recent publishes to `events`. */
  published(node: string): string;
}

/**
 * Escapes everything but `[A-Za-z0-9_.-]`: an ASCII character as `%XX`, any other UTF-16 unit as
 * `%uXXXX` (`%` itself included), so that two different inputs never make the same key and no
 * input can add a separator or a hash tag.
 */
export function escapeKeyPart(value: string): string {
  return value.replace(/[^A-Za-z0-9_.-]/g, (ch) => {
    const code = ch.charCodeAt(0);
    return code < 0x80
      ? `%${code.toString(16).toUpperCase().padStart(2, '0')}`
      : `%u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  });
}
