import { compareStreamIds, isStreamId } from './redis-envelope.js';

/** The longest event id a client may send back (and so the longest cursor written). */
export const MAX_CURSOR_LENGTH = 128;
/** A value position this node did not know when it wrote the cursor: resuming from it resets. */
const UNKNOWN = '?';

/**
 * Where a connection that holds routed values is in each Stream it reads: the endpoint-wide
 * Stream (`main`), and one position per routed value it holds (`values`, in the order of the
 * sorted values). Written as its events' `id:`, so `Last-Event-ID` resumes from all of them.
 *
 * `from` says which Stream the event came from ('m' for the main one, else the index of its
 * value), so that a live event can be told apart from what a replay already wrote (`covers`).
 * `tag` is a hash of the sorted values: a cursor brought back by a connection holding other
 * values is not resumed from.
 *
 * Form: `<from>.<main>.<tag>[.<position>]...`, for example `m.1764460800000-0.5d41402a.1764460799000-3`
 * (printable ASCII, no spaces, at most 128 bytes).
 */
export interface RedisCursor {
  from: 'm' | number;
  main: string;
  tag: string;
  /** A Stream id, or undefined when this node did not know the position. */
  values: Array<string | undefined>;
}

export function formatCursor(cursor: RedisCursor): string {
  let id = `${cursor.from}.${cursor.main}.${cursor.tag}`;
  for (const position of cursor.values) id += `.${position ?? UNKNOWN}`;
  return id;
}

/** Reads a cursor back; undefined when `id` is not one. */
export function parseCursor(id: string): RedisCursor | undefined {
  const parts = id.split('.');
  if (parts.length < 4 || !isStreamId(parts[1]) || !/^[0-9a-f]{8}$/.test(parts[2])) return undefined;
  const from = parts[0] === 'm' ? 'm' : /^\d{1,3}$/.test(parts[0]) ? Number(parts[0]) : undefined;
  if (from === undefined || (from !== 'm' && from >= parts.length - 3)) return undefined;
  const values: Array<string | undefined> = [];
  for (const position of parts.slice(3)) {
    if (position === UNKNOWN) values.push(undefined);
    else if (isStreamId(position)) values.push(position);
    else return undefined;
  }
  return { from, main: parts[1], tag: parts[2], values };
}

/** True when `id` has the shape of a cursor (a plain Stream id or a publisher's id does not). */
export function looksLikeCursor(id: string): boolean {
  return /^(m|\d{1,3})\.\d/.test(id);
}

/**
 * Whether the event written with cursor `event` is at or before `after` in its own Stream: a
 * replay that ended at `after` already wrote it (or the client had it).
 */
export function covers(after: RedisCursor, event: RedisCursor): boolean {
  if (after.tag !== event.tag || after.values.length !== event.values.length) return false;
  if (event.from === 'm') return compareStreamIds(event.main, after.main) <= 0;
  const own = event.values[event.from];
  const reached = after.values[event.from];
  return own !== undefined && reached !== undefined && compareStreamIds(own, reached) <= 0;
}

/**
 * The tag of a connection's sorted routed values: 32 bits of FNV-1a over them, in hex. Two
 * different sets may share a tag (1 in 4 billion); the cost is a replay from the other's positions.
 */
export function tagOf(values: readonly string[]): string {
  let hash = 0x811c9dc5;
  for (let v = 0; v < values.length; v++) {
    const value = values[v];
    for (let i = 0; i < value.length; i++) {
      hash ^= value.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    // a separator no value can hold as a code unit on its own, so ['ab'] and ['a','b'] differ
    hash ^= 0xffff;
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
