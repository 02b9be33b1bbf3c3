import { describe, it, expect } from '@jest/globals';
import { backoffDelay, retryAfterDelay } from '../src/backoff.js';
import { parseData } from '../src/sse-client.js';
import { connectUrl, isFinalStatus } from '../src/connection.js';

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

describe('retryAfterDelay', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it.each([
    ['5', 5000],
    [' 0 ', 0],
    ['Sun, 01 Mar 2026 12:00:30 GMT', 30_000],
    ['Sun, 01 Mar 2026 11:00:00 GMT', 0],
    ['soon', undefined],
    ['-3', undefined],
    ['', undefined],
    [null, undefined],
  ])('%j', (header, ms) => {
    expect(retryAfterDelay(header, now)).toBe(ms);
  });
});

describe('isFinalStatus', () => {
  it('stops on 204 and on 4xx except 408 and 429; retries the rest', () => {
    expect([204, 400, 401, 403, 404, 410, 451].map(isFinalStatus)).toEqual([true, true, true, true, true, true, true]);
    expect([200, 301, 408, 429, 500, 502, 503, 504].map(isFinalStatus)).toEqual([false, false, false, false, false, false, false, false]);
  });
});

describe('connectUrl', () => {
  it('sets lastEventId, replacing one already in the query', async () => {
    expect(await connectUrl('http://h/feed?channel=news', undefined, 'a-1')).toBe('http://h/feed?channel=news&lastEventId=a-1');
    expect(await connectUrl('http://h/feed?lastEventId=old', undefined, 'a 2')).toBe('http://h/feed?lastEventId=a+2');
    expect(await connectUrl('http://h/feed', undefined, undefined)).toBe('http://h/feed');
  });

  it('sets the query, from an object or a function called each time', async () => {
    let n = 0;
    const query = () => ({ stream_token: `t${++n}` });
    expect(await connectUrl('http://h/feed?stream_token=stale&a=1', { stream_token: 'x y' })).toBe('http://h/feed?stream_token=x+y&a=1');
    expect(await connectUrl('http://h/feed', query)).toBe('http://h/feed?stream_token=t1');
    expect(await connectUrl('http://h/feed', async () => query(), 'e-9')).toBe('http://h/feed?stream_token=t2&lastEventId=e-9');
  });
});
