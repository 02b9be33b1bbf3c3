import { describe, it, expect } from '@jest/globals';
import { backoffDelay } from '../src/backoff.js';
import { parseData } from '../src/sse-client.js';
import { resumeUrl } from '../src/event-source.connection.js';

describe('backoffDelay', () => {
  it('doubles per attempt up to the cap, jittered within the upper half of each step', () => {
    const low = (attempt: number) => backoffDelay(attempt, {}, () => 0);
    const high = (attempt: number) => backoffDelay(attempt, {}, () => 1);
    expect([0, 1, 2, 3].map(low)).toEqual([500, 1000, 2000, 4000]);
    expect([0, 1, 2, 3].map(high)).toEqual([1000, 2000, 4000, 8000]);
    expect(high(20)).toBe(30_000);
    expect(low(20)).toBe(15_000);
  });

  it('takes its own steps', () => {
    expect(backoffDelay(2, { initialDelay: 100, factor: 3, maxDelay: 500 }, () => 1)).toBe(500);
    expect(backoffDelay(1, { initialDelay: 100, factor: 3 }, () => 0.5)).toBe(225);
  });
});

describe('parseData', () => {
  it.each([
    ['{"a":1}', { a: 1 }],
    ['[1,2]', [1, 2]],
    ['42', 42],
    ['-1.5', -1.5],
    ['true', true],
    ['null', null],
    ['"quoted"', 'quoted'],
    ['Breaking news!', 'Breaking news!'],
    ['{not json', '{not json'],
    ['', ''],
  ])('%j', (raw, parsed) => {
    expect(parseData(raw)).toEqual(parsed);
  });
});

describe('resumeUrl', () => {
  it('sets lastEventId, replacing one already in the query', () => {
    expect(resumeUrl('http://h/feed?channel=news', 'a-1')).toBe('http://h/feed?channel=news&lastEventId=a-1');
    expect(resumeUrl('http://h/feed?lastEventId=old', 'a 2')).toBe('http://h/feed?lastEventId=a+2');
    expect(resumeUrl('http://h/feed', undefined)).toBe('http://h/feed');
  });
});
