import type { SseStream } from './sse-stream.js';

/** A filter after normalization: each key with the values (as strings) it accepts. */
export type NormalizedFilter = Record<string, string[]>;

/**
 * The open streams of this node and an inverted index on their metadata
 * (key → value → streams), so a filtered broadcast costs what it matches, not what is open.
 */
export class ConnectionRegistry {
  private readonly byId = new Map<string, SseStream>();
  private readonly byEndpoint = new Map<string, Set<SseStream>>();
  private readonly index = new Map<string, Map<string, Set<SseStream>>>();
  private watched: ReadonlySet<string> | undefined;
  private onHeld: ((key: string, value: string, held: boolean) => void) | undefined;

  get size(): number {
    return this.byId.size;
  }

  get(id: string): SseStream | undefined {
    return this.byId.get(id);
  }

  values(): IterableIterator<SseStream> {
    return this.byId.values();
  }

  endpointSize(endpoint: string): number {
    return this.byEndpoint.get(endpoint)?.size ?? 0;
  }

  endpointCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [endpoint, set] of this.byEndpoint) counts[endpoint] = set.size;
    return counts;
  }

  /** Streams holding `value` under `key`. */
  countByValue(key: string, value: string): number {
    return this.index.get(key)?.get(value)?.size ?? 0;
  }

  /** Count of streams per value of `key`. */
  valueCounts(key: string): Record<string, number> {
    const counts: Record<string, number> = {};
    const values = this.index.get(key);
    if (values) for (const [value, set] of values) counts[value] = set.size;
    return counts;
  }

  /**
   * Calls `listener` when the first stream holding a value of one of `keys` is indexed (`held`
   * true) and when the last one holding it leaves (false): what a routing transport follows.
   */
  watch(keys: readonly string[], listener: (key: string, value: string, held: boolean) => void): void {
    this.watched = new Set(keys);
    this.onHeld = listener;
  }

  add(stream: SseStream): void {
    this.byId.set(stream.id, stream);
    let set = this.byEndpoint.get(stream.endpoint);
    if (!set) this.byEndpoint.set(stream.endpoint, (set = new Set()));
    set.add(stream);
    for (const [key, values] of stream.metadataEntries()) this.indexValues(stream, key, values);
  }

  remove(stream: SseStream): boolean {
    if (this.byId.get(stream.id) !== stream) return false;
    this.byId.delete(stream.id);
    const set = this.byEndpoint.get(stream.endpoint);
    if (set) {
      set.delete(stream);
      if (set.size === 0) this.byEndpoint.delete(stream.endpoint);
    }
    for (const [key, values] of stream.metadataEntries()) this.unindexValues(stream, key, values);
    return true;
  }

  /** Moves `stream` in the index after `key` changed from `before` to its current values. */
  reindex(stream: SseStream, key: string, before: readonly string[] | undefined): void {
    if (this.byId.get(stream.id) !== stream) return;
    const now = stream.getMetadataValues(key);
    if (before === undefined) return this.indexValues(stream, key, now);
    // only what changed, so that a value the stream keeps is never let go and taken again
    this.unindexValues(
      stream,
      key,
      before.filter((value) => !now.includes(value)),
    );
    this.indexValues(
      stream,
      key,
      now.filter((value) => !before.includes(value)),
    );
  }

  /**
   * Calls `visit` once for every stream of `endpoint` (all endpoints when undefined) that
   * matches `filter`, and returns how many it visited.
   */
  forEachMatch(endpoint: string | undefined, filter: NormalizedFilter | undefined, visit: (stream: SseStream) => void): number {
    const scope = endpoint === undefined ? undefined : this.byEndpoint.get(endpoint);
    if (endpoint !== undefined && scope === undefined) return 0;
    const keys = filter === undefined ? EMPTY_KEYS : Object.keys(filter);
    if (keys.length === 0) {
      const all = scope ?? this.byId.values();
      let count = 0;
      for (const stream of all) {
        visit(stream);
        count++;
      }
      return count;
    }

    // Walk the smallest candidate set: one key's buckets, or the endpoint when it is smaller.
    let driver = -1;
    let driverSize = scope ? scope.size : this.byId.size;
    const buckets: Array<Set<SseStream>>[] = [];
    for (let i = 0; i < keys.length; i++) {
      const byValue = this.index.get(keys[i]);
      if (byValue === undefined) return 0;
      const sets: Array<Set<SseStream>> = [];
      let size = 0;
      for (const value of filter![keys[i]]) {
        const set = byValue.get(value);
        if (set !== undefined) {
          sets.push(set);
          size += set.size;
        }
      }
      if (size === 0) return 0;
      buckets.push(sets);
      if (size < driverSize || driver === -1) {
        driver = i;
        driverSize = size;
      }
    }
    if (scope && scope.size < driverSize) driver = -1;

    let count = 0;
    const driverKey = driver === -1 ? undefined : keys[driver];
    const check = (stream: SseStream): void => {
      if (!streamMatches(stream, endpoint, filter, driverKey)) return;
      visit(stream);
      count++;
    };
    if (driver === -1) {
      for (const stream of scope!) check(stream);
      return count;
    }
    const sets = buckets[driver];
    if (sets.length === 1) {
      for (const stream of sets[0]) check(stream);
      return count;
    }
    // A stream with several values of the driving key sits in several buckets: visit it once.
    const seen = new Set<SseStream>();
    for (const set of sets) {
      for (const stream of set) {
        if (seen.has(stream)) continue;
        seen.add(stream);
        check(stream);
      }
    }
    return count;
  }

  private indexValues(stream: SseStream, key: string, values: readonly string[]): void {
    let byValue = this.index.get(key);
    if (!byValue) this.index.set(key, (byValue = new Map()));
    for (const value of values) {
      let set = byValue.get(value);
      if (!set) {
        byValue.set(value, (set = new Set()));
        if (this.watched?.has(key)) this.onHeld!(key, value, true);
      }
      set.add(stream);
    }
  }

  private unindexValues(stream: SseStream, key: string, values: readonly string[]): void {
    const byValue = this.index.get(key);
    if (!byValue) return;
    for (const value of values) {
      const set = byValue.get(value);
      if (!set) continue;
      if (!set.delete(stream) || set.size > 0) continue;
      byValue.delete(value);
      if (this.watched?.has(key)) this.onHeld!(key, value, false);
    }
    if (byValue.size === 0) this.index.delete(key);
  }
}

const EMPTY_KEYS: string[] = [];

/**
 * Whether one stream matches an endpoint and filter, checked key by key (for replay, which sees
 * streams one at a time); `skipKey` is a key already known to match.
 */
export function streamMatches(
  stream: SseStream,
  endpoint: string | undefined,
  filter: NormalizedFilter | undefined,
  skipKey?: string,
): boolean {
  if (endpoint !== undefined && stream.endpoint !== endpoint) return false;
  if (filter === undefined) return true;
  for (const key in filter) {
    if (key !== skipKey && !hasAny(stream.getMetadataValues(key), filter[key])) return false;
  }
  return true;
}

function hasAny(values: readonly string[], wanted: readonly string[]): boolean {
  for (const value of values) if (wanted.includes(value)) return true;
  return false;
}
