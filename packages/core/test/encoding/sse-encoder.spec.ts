import { describe, it, expect } from '@jest/globals';
import {
  assertSseField,
  encodeSseComment,
  encodeSseFrame,
  encodeSseRetry,
  serializeSseData,
  SseEventError,
} from '@nest-sse/core';

const frame = (fields: Parameters<typeof encodeSseFrame>[0]) => encodeSseFrame(fields).toString('utf8');

describe('encodeSseFrame', () => {
  it.each([
    ['plain data', { data: 'hello' }, 'data: hello\n\n'],
    ['event and id', { id: '7', event: 'update', data: 'x' }, 'id: 7\nevent: update\ndata: x\n\n'],
    ['LF in data', { data: 'a\nb' }, 'data: a\ndata: b\n\n'],
    ['CRLF in data', { data: 'a\r\nb' }, 'data: a\ndata: b\n\n'],
    ['CR alone in data', { data: 'a\rb' }, 'data: a\ndata: b\n\n'],
    ['mixed breaks', { data: 'a\r\rb\n\r\nc' }, 'data: a\ndata: \ndata: b\ndata: \ndata: c\n\n'],
    ['trailing newline', { data: 'a\n' }, 'data: a\ndata: \n\n'],
    ['empty data', { data: '' }, 'data: \n\n'],
    ['a line that looks like a field', { data: 'x\nevent: evil\nid: 1' }, 'data: x\ndata: event: evil\ndata: id: 1\n\n'],
    ['a blank line inside data cannot end the event', { data: 'x\n\nid: 9' }, 'data: x\ndata: \ndata: id: 9\n\n'],
    ['leading space kept', { data: ' spaced' }, 'data:  spaced\n\n'],
    ['retry', { data: 'x', retry: 1500.7 }, 'retry: 1500\ndata: x\n\n'],
    ['unicode', { data: 'héllo ✓' }, 'data: héllo ✓\n\n'],
  ])('%s', (_name, fields, expected) => {
    expect(frame(fields)).toBe(expected);
  });
});

describe('assertSseField', () => {
  it.each([
    ['event', 'update\nid: 666'],
    ['event', 'update\r'],
    ['event', 'up\r\ndata: x'],
    ['id', 'a\0b'],
    ['id', '1\n'],
  ] as const)('refuses %s %j (injection)', (field, value) => {
    expect(() => assertSseField(field, value)).toThrow(SseEventError);
    expect(() => assertSseField(field, value)).toThrow(/CR, LF or NUL/);
  });

  it('refuses empty, over-long and non-string values', () => {
    expect(() => assertSseField('event', '')).toThrow(/empty/);
    expect(() => assertSseField('id', 'x'.repeat(129))).toThrow(/limit is 128/);
    expect(() => assertSseField('event', 42)).toThrow(/must be a string, got number/);
  });

  it.each([
    ['', /^id must not be empty; /],
    ['with space', /^id contains a space \(U\+0020\) at index 4; /],
    ['tab\there', /^id contains a tab \(U\+0009\) at index 3; /],
    ['del\x7f', /^id contains DEL \(U\+007F\) at index 3; /],
    ['bell\x07', /^id contains U\+0007 at index 4; /],
    ['caf\u00e9', /^id contains 'é' \(U\+00E9\) at index 3; /],
    ['emoji\u{1F600}', /^id contains '😀' \(U\+1F600\) at index 5; /],
    ['line\u2028sep', /^id contains U\+2028 at index 4; /],
    ['nbsp\u00a0', /^id contains U\+00A0 at index 4; /],
    ['half\uD800', /^id contains U\+D800 at index 4; /],
    ['a\nb', /^id must not contain CR, LF or NUL/],
    ['x'.repeat(129), /^id is 129 characters long; the limit is 128; /],
    [42, /^id must be a string, got number; /],
  ] as const)('refuses the id %j, saying what is wrong and which ids are allowed', (value, problem) => {
    expect(() => assertSseField('id', value)).toThrow(problem);
    expect(() => assertSseField('id', value)).toThrow(
      /; an id must be 1 to 128 printable ASCII characters \(! to ~, no spaces\), so that a client can resume from it with Last-Event-ID$/,
    );
  });

  it('accepts every printable ASCII character in an id', () => {
    let all = '';
    for (let code = 0x21; code <= 0x7e; code++) all += String.fromCharCode(code);
    expect(assertSseField('id', all)).toBe(all);
    expect(assertSseField('id', '!')).toBe('!');
    expect(assertSseField('id', '~'.repeat(128))).toBe('~'.repeat(128));
  });

  it('accepts ordinary names and ids', () => {
    expect(assertSseField('event', 'user.updated')).toBe('user.updated');
    expect(assertSseField('id', '1732841123456-0')).toBe('1732841123456-0');
  });
});

describe('serializeSseData', () => {
  it('keeps strings, sends everything else as JSON', () => {
    expect(serializeSseData('x')).toBe('x');
    expect(serializeSseData({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(serializeSseData(3)).toBe('3');
    expect(serializeSseData(null)).toBe('null');
    expect(serializeSseData(undefined)).toBe('');
  });

  it('explains data that cannot be JSON', () => {
    const circular: any = {};
    circular.self = circular;
    expect(() => serializeSseData(circular)).toThrow(/could not be serialized as JSON/);
    expect(() => serializeSseData(10n)).toThrow(SseEventError);
    expect(() => serializeSseData(() => 1)).toThrow(/cannot be serialized/);
  });
});

describe('comments and retry', () => {
  it('writes a comment that cannot break out of its line', () => {
    expect(encodeSseComment('hi\nevent: x').toString()).toBe(':hi event: x\n\n');
    expect(encodeSseComment().toString()).toBe(':\n\n');
  });

  it('writes the retry field', () => {
    expect(encodeSseRetry(3000).toString()).toBe('retry: 3000\n\n');
  });
});
