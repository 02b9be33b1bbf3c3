import { describe, it, expect, beforeEach } from '@jest/globals';
import { ConnectionRegistry } from '../../src/connection/connection-registry.js';
import { makeStream } from './streams.js';

describe('ConnectionRegistry', () => {
  let registry: ConnectionRegistry;
  const add = (id: string, metadata: Record<string, string | string[]>, endpoint = '/events') => {
    const stream = makeStream(id, metadata, endpoint, { reindex: (s, key, before) => registry.reindex(s, key, before) });
    registry.add(stream);
    return stream;
  };
  const ids = (endpoint: string | undefined, filter?: Record<string, string[]>) => {
    const out: string[] = [];
    registry.forEachMatch(endpoint, filter, (s) => out.push(s.id));
    return out.sort();
  };

  beforeEach(() => {
    registry = new ConnectionRegistry();
    add('a', { channel: 'news', user_id: '1' });
    add('b', { channel: 'sports', user_id: '2' });
    add('c', { channel: ['news', 'sports'], user_id: '3' });
    add('d', { user_id: '4' });
    add('e', { channel: 'news' }, '/other');
  });

  it('matches everyone without a filter, per endpoint or across all', () => {
    expect(ids('/events')).toEqual(['a', 'b', 'c', 'd']);
    expect(ids(undefined)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(ids('/nothing')).toEqual([]);
  });

  it('ANDs keys and ORs the values of one key', () => {
    expect(ids('/events', { channel: ['news'] })).toEqual(['a', 'c']);
    expect(ids(undefined, { channel: ['news'] })).toEqual(['a', 'c', 'e']);
    expect(ids('/events', { channel: ['news'], user_id: ['3'] })).toEqual(['c']);
    expect(ids('/events', { channel: ['news', 'sports'] })).toEqual(['a', 'b', 'c']);
    expect(ids('/events', { channel: ['news', 'sports'], user_id: ['1', '2'] })).toEqual(['a', 'b']);
  });

  it('never matches a connection that lacks the key', () => {
    expect(ids('/events', { channel: ['news', 'sports'] })).not.toContain('d');
    expect(ids('/events', { missing: ['x'] })).toEqual([]);
  });

  it('visits a connection with several matching values once', () => {
    const visits: string[] = [];
    registry.forEachMatch('/events', { channel: ['news', 'sports'] }, (s) => visits.push(s.id));
    expect(visits.filter((id) => id === 'c')).toHaveLength(1);
  });

  it('keeps the index exact when metadata changes and streams leave', () => {
    const d = registry.get('d')!;
    d.setMetadata('channel', 'news');
    expect(ids('/events', { channel: ['news'] })).toEqual(['a', 'c', 'd']);
    d.setMetadata('channel', undefined);
    expect(ids('/events', { channel: ['news'] })).toEqual(['a', 'c']);
    registry.remove(registry.get('a')!);
    expect(ids('/events', { channel: ['news'] })).toEqual(['c']);
    expect(registry.countByValue('channel', 'news')).toBe(2);
    for (const s of [...registry.values()]) registry.remove(s);
    expect(registry.size).toBe(0);
    expect(registry.endpointCounts()).toEqual({});
    expect(registry.valueCounts('channel')).toEqual({});
  });

  it('walks only the smallest candidate set: cost grows with the matches', () => {
    registry = new ConnectionRegistry();
    const checks = { count: 0 };
    for (let i = 0; i < 10_000; i++) {
      const s = add(`s${i}`, { channel: i % 100 === 0 ? 'rare' : 'common', region: i % 2 ? 'eu' : 'us' });
      const original = s.getMetadataValues.bind(s);
      s.getMetadataValues = (key: string) => {
        checks.count++;
        return original(key);
      };
    }
    const matched = ids('/events', { channel: ['rare'], region: ['us'] });
    expect(matched).toHaveLength(100);
    // driven by the 100 'rare' streams, each checked once for region; never the 10,000
    expect(checks.count).toBe(100);
  });

  it('tells a watcher when the first stream with a value of a watched key comes and the last goes', () => {
    const fresh = new ConnectionRegistry();
    const changes: string[] = [];
    fresh.watch(['channel'], (key, value, held) => changes.push(`${held ? '+' : '-'}${key}=${value}`));
    const make = (id: string, metadata: Record<string, string | string[]>) =>
      makeStream(id, metadata, '/events', { reindex: (s, key, before) => fresh.reindex(s, key, before) });
    const a = make('a', { channel: 'news', user_id: '1' });
    const b = make('b', { channel: ['news', 'sports'] });
    fresh.add(a);
    fresh.add(b);
    expect(changes).toEqual(['+channel=news', '+channel=sports']);
    fresh.remove(a);
    expect(changes).toHaveLength(2);
    b.setMetadata('channel', ['sports', 'tech']);
    expect(changes.slice(2)).toEqual(['-channel=news', '+channel=tech']);
    fresh.remove(b);
    expect(changes.slice(4).sort()).toEqual(['-channel=sports', '-channel=tech']);
    // removing again changes nothing
    fresh.remove(b);
    expect(changes).toHaveLength(6);
  });
});
