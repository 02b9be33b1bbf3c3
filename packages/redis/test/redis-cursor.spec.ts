import { describe, expect, it } from '@jest/globals';
import { isResumableId } from '@nest-sse/core';
import { covers, formatCursor, looksLikeCursor, MAX_CURSOR_LENGTH, parseCursor, tagOf } from '../src/redis-cursor.js';

describe('routed cursors', () => {
  const tag = tagOf(['news', 'tech']);

  it('reads back what it writes, with unknown positions, and is a resumable id', () => {
    const cursor = { from: 1 as const, main: '1764460800000-0', tag, values: ['1764460799000-3', '0-0'] };
    const id = formatCursor(cursor);
    expect(id).toBe(`1.1764460800000-0.${tag}.1764460799000-3.0-0`);
    expect(parseCursor(id)).toEqual(cursor);
    expect(isResumableId(id)).toBe(true);
    expect(looksLikeCursor(id)).toBe(true);
    const unknown = formatCursor({ from: 'm', main: '5-1', tag, values: [undefined, '7-0'] });
    expect(unknown).toBe(`m.5-1.${tag}.?.7-0`);
    expect(parseCursor(unknown)).toEqual({ from: 'm', main: '5-1', tag, values: [undefined, '7-0'] });
  });

  it('refuses what is not a cursor: Stream ids, publisher ids, a wrong tag, an index past the values', () => {
    for (const id of [
      '1764460800000-0',
      'order-17',
      'm.1-0',
      `m.x.${tag}.1-0`,
      'm.1-0.XYZ.1-0',
      `2.1-0.${tag}.1-0`,
      `m.1-0.${tag}.1-0.junk`,
    ]) {
      expect(parseCursor(id)).toBeUndefined();
    }
    expect(looksLikeCursor('1764460800000-0')).toBe(false);
    expect(looksLikeCursor('order-17')).toBe(false);
  });

  it('covers an event at or before the replay end in its own Stream only', () => {
    const after = { from: 'm' as const, main: '10-0', tag, values: ['20-0', '30-0'] };
    expect(covers(after, { from: 'm', main: '10-0', tag, values: ['25-0', '35-0'] })).toBe(true);
    expect(covers(after, { from: 'm', main: '11-0', tag, values: ['1-0', '1-0'] })).toBe(false);
    expect(covers(after, { from: 0, main: '99-0', tag, values: ['20-0', '99-0'] })).toBe(true);
    expect(covers(after, { from: 1, main: '1-0', tag, values: ['1-0', '30-1'] })).toBe(false);
    // another set of values, or a position the node did not know, is never covered
    expect(covers(after, { from: 'm', main: '1-0', tag: tagOf(['news']), values: ['1-0'] })).toBe(false);
    expect(covers(after, { from: 0, main: '1-0', tag, values: [undefined, '1-0'] })).toBe(false);
  });

  it('tags sets of values apart, whatever their split', () => {
    expect(tagOf(['ab'])).not.toBe(tagOf(['a', 'b']));
    expect(tagOf(['news'])).not.toBe(tagOf(['news', 'news']));
    expect(tagOf(['news'])).toMatch(/^[0-9a-f]{8}$/);
    expect(MAX_CURSOR_LENGTH).toBe(128);
  });
});
