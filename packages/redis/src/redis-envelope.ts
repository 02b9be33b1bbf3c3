import type { SseEnvelope } from '@nest-sse/core';

/** The one field of a Stream entry that holds the envelope (JSON, without its id). */
const ENVELOPE_FIELD = 'e';

/** A Stream id as Redis makes them: milliseconds, a dash, a sequence number. */
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

export function isStreamId(id: string): boolean {
  return STREAM_ID.test(id);
}

/** Orders two Stream ids (decimal strings without leading zeros) without parsing them into numbers. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  return compareDecimal(a.slice(0, da), b.slice(0, db)) || compareDecimal(a.slice(da + 1), b.slice(db + 1));
}

function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The id an entry says was generated before it (field `p`), if it says. */
export function previousOf(fields: unknown): string | undefined {
  if (!Array.isArray(fields)) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (String(fields[i]) === 'p') return String(fields[i + 1]);
  }
  return undefined;
}

/** A loss marker of a routed value's Stream: entries after `after` were lost, at least up to `through`. */
export interface RedisLoss {
  /** The last entry kept before the lost ones ('' when unknown: the Stream restarted). */
  after: string;
  /** The last entry known lost. */
  through: string;
}

/** The loss an entry marks (fields `f` and `l`, see MARK_LOST), if it is a loss marker. */
export function lossOf(fields: unknown): RedisLoss | undefined {
  if (!Array.isArray(fields)) return undefined;
  let after: string | undefined;
  let through: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = String(fields[i]);
    if (name === 'l') through = String(fields[i + 1]);
    else if (name === 'f') after = String(fields[i + 1]);
  }
  return through === undefined ? undefined : { after: after ?? '', through };
}

const OPTIONAL_STRINGS = ['eventId', 'event', 'endpoint', 'target'] as const;

/**
 * Reads one Stream entry back into an envelope, or says why it cannot: the Stream may hold
 * entries another program wrote, and nothing read from it is trusted.
 */
export function decodeEntry(id: string, fields: unknown): SseEnvelope | string {
  let raw: unknown;
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (String(fields[i]) === ENVELOPE_FIELD) raw = fields[i + 1];
    }
  }
  if (raw === undefined) return `no '${ENVELOPE_FIELD}' field`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(raw));
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'not an object';
  const value = parsed as Record<string, unknown>;
  if (typeof value.data !== 'string') return 'data is not a string';
  if (typeof value.origin !== 'string') return 'origin is not a string';
  if (!Number.isSafeInteger(value.seq)) return 'seq is not an integer';
  if (typeof value.time !== 'number') return 'time is not a number';
  for (const key of OPTIONAL_STRINGS) {
    if (value[key] !== undefined && typeof value[key] !== 'string') return `${key} is not a string`;
  }
  if (value.filter !== undefined) {
    const filter = value.filter;
    if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) return 'filter is not an object';
    for (const key of Object.keys(filter)) {
      const values = (filter as Record<string, unknown>)[key];
      if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) return `filter.${key} is not a list of strings`;
    }
  }
  const checked = value as unknown as Omit<SseEnvelope, 'id'>;
  return {
    id,
    eventId: checked.eventId,
    event: checked.event,
    data: checked.data,
    endpoint: checked.endpoint,
    filter: checked.filter,
    target: checked.target,
    origin: checked.origin,
    seq: checked.seq,
    time: checked.time,
  };
}

/** The entries of an XRANGE reply (or of one stream of an XREAD reply). */
export function entriesOf(reply: unknown): Array<[string, unknown]> {
  return Array.isArray(reply) ? (reply as Array<[string, unknown]>) : [];
}

/**
 * The entries of the first stream of an XREAD reply: `[[key, entries]]` on RESP2, `[key, entries]`
 * on RESP3 with the `legacy` reply mapping the reader connection is made with.
 */
export function xreadEntries(reply: unknown): Array<[string, unknown]> {
  if (!Array.isArray(reply)) return [];
  return entriesOf(
    typeof reply[0] === 'string' || Buffer.isBuffer(reply[0]) ? reply[1] : (reply[0] as unknown[] | undefined)?.[1],
  );
}
