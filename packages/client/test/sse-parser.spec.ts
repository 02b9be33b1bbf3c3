import { describe, it, expect } from '@jest/globals';
import { SseParser } from '../src/sse-parser.js';

/** Parses `chunks` and returns what was dispatched: [type, data, lastEventId] and the retry hints. */
function parse(chunks: string[], lastEventId?: string) {
  const events: Array<[string, string, string]> = [];
  const retries: number[] = [];
  const parser = new SseParser({ event: (type, data, id) => events.push([type, data, id]), retry: (ms) => retries.push(ms) }, lastEventId);
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return { events, retries, lastEventId: parser.lastEventId };
}

/** Every split of `text` into two chunks, and one character at a time. */
function splits(text: string): string[][] {
  const out = [[text], [...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

describe('SseParser (HTML standard, event stream interpretation)', () => {
  it('dispatches named and unnamed events, joining data lines with LF', () => {
    expect(parse(['event: update\ndata: {"a":1}\n\ndata: one\ndata: two\n\n']).events).toEqual([
      ['update', '{"a":1}', ''],
      ['message', 'one\ntwo', ''],
    ]);
  });

  it('ends lines with CRLF, LF or CR, wherever the chunks split, a split CRLF counting once', () => {
    const text = 'data: a\r\ndata: b\rdata: c\n\r\nid: 7\rdata: d\r\r';
    for (const chunks of splits(text)) {
      expect(parse(chunks).events).toEqual([
        ['message', 'a\nb\nc', ''],
        ['message', 'd', '7'],
      ]);
    }
  });

  it('strips one space after the colon only, and takes a field without a colon as empty', () => {
    expect(parse(['data:no space\n\ndata:  two spaces\n\ndata\n\n']).events).toEqual([
      ['message', 'no space', ''],
      ['message', ' two spaces', ''],
      ['message', '', ''],
    ]);
  });

  it('skips comments and unknown fields, and does not dispatch an event without data', () => {
    expect(parse([': heartbeat\n\nevent: lonely\n\nfoo: bar\ndata: x\n\n']).events).toEqual([['message', 'x', '']]);
  });

  it('keeps the last id across events, ignores an id with NUL, and lets an empty id reset it', () => {
    const { events, lastEventId } = parse(['id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n']);
    expect(events).toEqual([
      ['message', 'a', '1'],
      ['message', 'b', '1'],
      ['message', 'c', '1'],
      ['message', 'd', ''],
    ]);
    expect(lastEventId).toBe('');
  });

  it('commits an id at a blank line even when no event is dispatched, and starts from the given id', () => {
    expect(parse(['data: x\n\n'], 'e-4').events).toEqual([['message', 'x', 'e-4']]);
    expect(parse(['id: 9\n\n'], 'e-4').lastEventId).toBe('9');
    // not committed without the blank line
    expect(parse(['id: 9\n'], 'e-4').lastEventId).toBe('e-4');
  });

  it('takes retry only when it is all ASCII digits', () => {
    expect(parse(['retry: 1500\nretry: 2s\nretry: -1\nretry:\nretry: 0\n\n']).retries).toEqual([1500, 0]);
  });

  it('drops a leading BOM once, and an unterminated event at the end', () => {
    expect(parse(['\ufeff', 'data: a\n\n\ufeffdata: b\n\ndata: never\n']).events).toEqual([
      ['message', 'a', ''],
      // a BOM after the start is part of the field name, so 'data' is not recognised
    ]);
    expect(parse(['\ufeffdata: a\n\n']).events).toEqual([['message', 'a', '']]);
  });

  it('keeps text that looks like JSON as text', () => {
    expect(parse(['event: note\ndata: 42\n\n']).events).toEqual([['note', '42', '']]);
  });
});
