import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { assertSseField, encodeSseComment, encodeSseFrame, encodeSseRetry, serializeSseData, SseEventError } from '@nest-sse/core';

interface ParsedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/**
 * An event-stream parser written from the WHATWG HTML spec ("Parsing an event stream",
 * "Interpreting an event stream"): UTF-8 decoded as it streams, one leading BOM dropped, lines
 * ended by CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of the next are
 * one line end), comments ignored, one space after the colon dropped, `id` with NUL ignored,
 * `retry` only when all ASCII digits, and an event without data not dispatched.
 */
class SpecParser {
  readonly events: ParsedEvent[] = [];
  retry: number | undefined;
  private readonly decoder = new TextDecoder('utf-8');
  private first = true;
  private line = '';
  private afterCr = false;
  private data = '';
  private type = '';
  private lastEventId = '';

  feed(bytes: Uint8Array): void {
    let text = this.decoder.decode(bytes, { stream: true });
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    for (const char of text) {
      if (this.afterCr) {
        this.afterCr = false;
        if (char === '\n') continue;
      }
      if (char === '\r' || char === '\n') {
        this.afterCr = char === '\r';
        this.processLine(this.line);
        this.line = '';
      } else this.line += char;
    }
  }

  private processLine(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
    }
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data += value + '\n';
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastEventId = value;
    } else if (field === 'retry') {
      if (/^[0-9]+$/.test(value)) this.retry = Number(value);
    }
  }

  private dispatch(): void {
    if (this.data === '') {
      this.type = '';
      return;
    }
    this.events.push({ type: this.type === '' ? 'message' : this.type, data: this.data.slice(0, -1), lastEventId: this.lastEventId });
    this.data = '';
    this.type = '';
  }
}

// Units that stress the format: every line terminator, the field separator, NUL, a BOM, spaces,
// letters outside ASCII, astral characters, lone surrogates; and any code point at all.
const unit = fc.oneof(
  fc.constantFrom('\r', '\n', '\r\n', '\n\r', ':', ': ', ' ', '\t', '\0', '\uFEFF', 'é', '✓', '😀', '\uD800', '\uDC00', 'data: x', 'id: 9'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }),
);
const text = (maxLength: number) => fc.string({ unit, maxLength });
const idText = fc.oneof(text(8), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 140 }));

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** The documented rules, written apart from the encoder's: an event name, an id. */
const validEvent = (s: string) => s.length >= 1 && s.length <= 256 && !/[\r\n\0]/.test(s) && !LONE_SURROGATE.test(s);
const validId = (s: string) => /^[\x21-\x7e]{1,128}$/.test(s);

interface Sent {
  event?: string;
  id?: string;
  data: string;
}

const sent = fc.record({ event: fc.option(text(12), { nil: undefined }), id: fc.option(idText, { nil: undefined }), data: text(40) }, { requiredKeys: ['data'] });

/** Encodes as the hub does; undefined when the encoder refused (it must throw SseEventError). */
function encode(message: Sent): Buffer | undefined {
  try {
    return encodeSseFrame({
      event: message.event === undefined ? undefined : assertSseField('event', message.event),
      id: message.id === undefined ? undefined : assertSseField('id', message.id),
      data: serializeSseData(message.data),
    });
  } catch (err) {
    expect(err).toBeInstanceOf(SseEventError);
    return undefined;
  }
}

const acceptable = (m: Sent) =>
  (m.event === undefined || validEvent(m.event)) && (m.id === undefined || validId(m.id)) && !LONE_SURROGATE.test(m.data);

/** What a client must see for an accepted message: SSE carries every line end as LF. */
const expected = (m: Sent, lastEventId: string): ParsedEvent => ({
  type: m.event ?? 'message',
  data: m.data.replace(/\r\n|\r/g, '\n'),
  lastEventId: m.id ?? lastEventId,
});

/** Splits bytes at the given points, the way TCP may deliver them (inside a UTF-8 sequence or a CRLF too). */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const point of points) {
    out.push(bytes.subarray(at, point));
    at = point;
  }
  out.push(bytes.subarray(at));
  return out;
}

describe('the encoder against a spec-following parser', () => {
  it('one event: the client parses exactly what was sent, or the encoder refused it for a documented reason', () => {
    fc.assert(
      fc.property(sent, (message) => {
        const frame = encode(message);
        expect(frame !== undefined).toBe(acceptable(message));
        if (frame === undefined) return;
        const parser = new SpecParser();
        parser.feed(frame);
        expect(parser.events).toEqual([expected(message, '')]);
      }),
      { numRuns: 3000 },
    );
  });

  it('a stream of events, comments and retry hints, cut anywhere: every accepted event arrives whole, in order, none merged', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(sent, fc.record({ comment: text(20) }), fc.record({ retry: fc.nat(100_000) })), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (items, cuts) => {
          const frames: Buffer[] = [];
          const want: ParsedEvent[] = [];
          let lastEventId = '';
          let retry: number | undefined;
          for (const item of items) {
            if ('comment' in item) frames.push(encodeSseComment(item.comment));
            else if ('retry' in item) {
              frames.push(encodeSseRetry(item.retry));
              retry = item.retry;
            } else {
              const frame = encode(item);
              if (frame === undefined) continue;
              frames.push(frame);
              const event = expected(item, lastEventId);
              lastEventId = event.lastEventId;
              want.push(event);
            }
          }
          const parser = new SpecParser();
          for (const chunk of chunks(Buffer.concat(frames), cuts)) parser.feed(chunk);
          expect(parser.events).toEqual(want);
          expect(parser.retry).toBe(retry);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('data of any other JSON value round-trips through JSON.parse (strings are sent as they are, above)', () => {
    fc.assert(
      fc.property(fc.jsonValue().filter((value) => typeof value !== 'string'), (value) => {
        const parser = new SpecParser();
        parser.feed(encodeSseFrame({ data: serializeSseData(value) }));
        expect(JSON.parse(parser.events[0].data)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 500 },
    );
  });
});
