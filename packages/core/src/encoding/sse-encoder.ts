import { MAX_EVENT_LENGTH, MAX_ID_LENGTH } from '../sse.constants.js';
import { SseEventError } from '../errors/sse-event.error.js';

// A CR, LF or NUL in `event` or `id` would end the field early and let the rest be read as a new
// field (or, for NUL in an id, make the browser drop it): the advisory GHSA-36xv-jgw5-4q75 class.
const UNSAFE_FIELD = /[\r\n\0]/;
// The spec accepts CRLF, lone LF and lone CR as line ends inside data.
const LINE_BREAK = /\r\n|\r|\n/;
// A client sends the last id back in the Last-Event-ID header (ASCII only, and a browser trims
// spaces around it): an id is accepted only in a form every transport can resume from.
const RESUMABLE_ID = new RegExp(`^[\\x21-\\x7e]{1,${MAX_ID_LENGTH}}$`);

/** The ids `broadcast`, `send` and `Last-Event-ID` accept, in words (error messages, docs). */
export const SSE_ID_FORM = `1 to ${MAX_ID_LENGTH} printable ASCII characters (! to ~, no spaces)`;

/** Whether a client can resume from `id` with `Last-Event-ID`: the one rule for ids. */
export function isResumableId(id: string): boolean {
  return RESUMABLE_ID.test(id);
}

// UTF-8 has no bytes for half a surrogate pair: it would reach the client as U+FFFD. With the
// u flag a pair is one code point, so \p{Cs} matches only a half left alone.
const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATE_TEXT = 'contains a lone UTF-16 surrogate, which UTF-8 cannot carry';

/** One event as written on the wire. */
export interface SseFrameFields {
  id?: string;
  event?: string;
  data: string;
  retry?: number;
}

/** What every refused id is told: the ids a client can resume from. */
const ID_RULE = `an id must be ${SSE_ID_FORM}, so that a client can resume from it with Last-Event-ID`;

/**
 * Checks an `event` or `id` value and returns it; throws `SseEventError` naming the field, what
 * is wrong with the value, and for an id the form ids must have.
 */
export function assertSseField(field: 'event' | 'id', value: unknown): string {
  const problem = fieldProblem(field, value);
  if (problem === undefined) return value as string;
  throw new SseEventError(field === 'id' ? `id ${problem}; ${ID_RULE}` : `${field} ${problem}`);
}

function fieldProblem(field: 'event' | 'id', value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describe(value)}`;
  const max = field === 'id' ? MAX_ID_LENGTH : MAX_EVENT_LENGTH;
  if (value.length === 0) return 'must not be empty';
  if (value.length > max) return `is ${value.length} characters long; the limit is ${max}`;
  if (UNSAFE_FIELD.test(value)) return 'must not contain CR, LF or NUL (it would inject fields into the stream)';
  if (field === 'id' && !isResumableId(value)) {
    const at = value.search(/[^\x21-\x7e]/);
    return `contains ${describeCharacter(value.codePointAt(at)!)} at index ${at}`;
  }
  if (LONE_SURROGATE.test(value)) return LONE_SURROGATE_TEXT;
  return undefined;
}

const NAMED: Record<number, string> = { 0x09: 'a tab', 0x20: 'a space', 0x7f: 'DEL' };

/** A character for a message: its code point, and the character itself when it is printable. */
function describeCharacter(code: number): string {
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (NAMED[code] !== undefined) return `${NAMED[code]} (${hex})`;
  const printable = !/[\p{C}\p{Z}]/u.test(String.fromCodePoint(code));
  return printable ? `'${String.fromCodePoint(code)}' (${hex})` : hex;
}

/** Turns event data into the string sent: strings as they are, anything else as JSON. */
export function serializeSseData(data: unknown): string {
  if (typeof data === 'string') {
    if (LONE_SURROGATE.test(data)) throw new SseEventError(`data ${LONE_SURROGATE_TEXT}`);
    return data;
  }
  if (data === undefined) return '';
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new SseEventError(`data could not be serialized as JSON: ${(err as Error).message}`);
  }
  if (json === undefined) {
    throw new SseEventError(`data of type ${typeof data} cannot be serialized as JSON`);
  }
  return json;
}

/**
 * Encodes one event into the bytes every recipient gets. Fields are assumed checked with
 * `assertSseField`; data is split on every kind of line break into `data:` lines.
 */
export function encodeSseFrame(fields: SseFrameFields): Buffer {
  let out = '';
  if (fields.id !== undefined) out += `id: ${fields.id}\n`;
  if (fields.event !== undefined) out += `event: ${fields.event}\n`;
  if (fields.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(fields.retry))}\n`;
  const data = fields.data;
  if (data.indexOf('\n') === -1 && data.indexOf('\r') === -1) {
    out += `data: ${data}\n`;
  } else {
    for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  }
  return Buffer.from(out + '\n', 'utf8');
}

/** A comment frame (ignored by clients, keeps proxies from timing the connection out). */
export function encodeSseComment(text = ''): Buffer {
  return Buffer.from(`:${text.replace(/[\r\n]+/g, ' ')}\n\n`, 'utf8');
}

/** A frame holding only the reconnection delay, in milliseconds. */
export function encodeSseRetry(ms: number): Buffer {
  return Buffer.from(`retry: ${Math.max(0, Math.floor(ms))}\n\n`, 'utf8');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
