import { describe, it, expect } from '@jest/globals';
import { MetadataRules, normalizeFilter } from '../../src/connection/metadata-rules.js';
import { SseEventError } from '../../src/errors/sse-event.error.js';

const fail = (message: string): never => {
  throw new Error(`400: ${message}`);
};

describe('MetadataRules', () => {
  const rules = new MetadataRules({ maxKeys: 2, maxValuesPerKey: 2, maxValueLength: 5 });

  it('reads metadata and lastEventId from the query within the limits', () => {
    const { metadata, lastEventId } = rules.fromQuery('/events?channel=news&tag=a&tag=b&lastEventId=7', fail);
    expect([...metadata]).toEqual([
      ['channel', ['news']],
      ['tag', ['a', 'b']],
    ]);
    expect(lastEventId).toBe('7');
    expect(() => rules.fromQuery('/e?a=1&b=2&c=3', fail)).toThrow('400: Too many metadata keys in the query: at most 2.');
    expect(() => rules.fromQuery('/e?a=1&a=2&a=3', fail)).toThrow("400: Metadata key 'a' has more than 2 values.");
    expect(() => rules.fromQuery('/e?a=123456', fail)).toThrow("400: Metadata 'a' is 6 characters long; the limit is 5.");
    expect(() => rules.fromQuery('/e?__proto__=1', fail)).toThrow("400: Metadata key '__proto__' is reserved.");
  });

  it('holds trustedMetadata to the same key and value rules, as errors in code', () => {
    const metadata = new Map([['channel', ['news']]]);
    rules.addTrusted(metadata, { channel: 'own', user_id: 42, flags: [true, 'x'] });
    expect([...metadata]).toEqual([
      ['channel', ['own']],
      ['user_id', ['42']],
      ['flags', ['true', 'x']],
    ]);
    const refuses = (trusted: unknown) => expect(() => rules.addTrusted(new Map(), trusted)).toThrow(SseEventError);
    refuses({ user_id: '123456' });
    refuses({ 'bad key': '1' });
    refuses({ __proto__: '1', constructor: '1' });
    refuses({ user_id: ['1', '2', '3'] });
    refuses({ user_id: { id: 1 } });
    refuses({ user_id: undefined });
    refuses({ user_id: [] });
    refuses('user 1');
    expect(() => rules.addTrusted(new Map(), { user_id: '123456' })).toThrow(
      "Metadata 'user_id' is 6 characters long; the limit is 5.",
    );
    expect(() => rules.addTrusted(new Map(), undefined)).not.toThrow();
  });

  it('holds setMetadata to the same rules, and gives the values as the stream holds them', () => {
    expect(rules.checkChange({}, 'a', ['1', 2])).toEqual(['1', '2']);
    expect(rules.checkChange({}, 'a', true)).toEqual(['true']);
    expect(rules.checkChange({}, 'a', [])).toEqual([]);
    expect(() => rules.checkChange({}, 'a', ['1', '2', '3'])).toThrow(SseEventError);
    expect(() => rules.checkChange({}, 'a', ['123456'])).toThrow(SseEventError);
    expect(() => rules.checkChange({}, 'a', { id: 1 })).toThrow("setMetadata: 'a' must be a string, number or boolean");
    expect(() => rules.checkChange({}, 'a', [null])).toThrow(SseEventError);
    expect(() => rules.checkChange({ a: '1', b: '2' }, 'c', ['1'])).toThrow('Too many metadata keys: at most 2.');
    expect(rules.checkChange({ a: '1', b: '2' }, 'b', ['3'])).toEqual(['3']);
  });

  it('normalizes filters with the same key rule', () => {
    expect(normalizeFilter({ channel: ['news', 1, true] })).toEqual({ channel: ['news', '1', 'true'] });
    expect(normalizeFilter({})).toBeUndefined();
    expect(() => normalizeFilter({ 'bad key': 'x' })).toThrow(SseEventError);
    expect(() => normalizeFilter({ channel: [] })).toThrow('filter.channel is an empty list, which matches nothing');
  });
});
