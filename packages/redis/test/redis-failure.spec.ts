import { describe, expect, it } from '@jest/globals';
import { ReplyError } from 'ioredis';
import { SseTransportUnavailableError } from '@nest-sse/core';
import { RedisUnavailableError } from '../src/errors/redis-unavailable.error.js';
import { redisFailure, refusedError, timedOutError } from '../src/redis-failure.js';

/** An error reply as ioredis rejects with it (the first word is Redis's error code). */
const reply = (message: string) => new ReplyError(message);

describe('redisFailure', () => {
  it.each([
    ['OOM command not allowed when used memory > maxmemory.', /^Redis is out of memory/, 5],
    ["READONLY You can't write against a read only replica.", /^Redis answered READONLY/, 2],
    ['NOSCRIPT No matching script. Please use EVAL.', /^Redis lost the publish script/, 1],
    ['MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.', /^Redis is failing over/, 2],
    ['CLUSTERDOWN The cluster is down', /^Redis is failing over/, 2],
    ['TRYAGAIN Multiple keys request during rehashing of slot', /^Redis is failing over/, 2],
    ['LOADING Redis is loading the dataset in memory', /^Redis is loading its dataset/, 2],
    ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.', /^Redis is busy/, 1],
    [
      'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
      /^Redis cannot save to disk/,
      5,
    ],
    ['ERR something else went wrong', /^Redis refused it: ERR something else/, 1],
  ])('%s', (message, reason, retryAfter) => {
    const failure = redisFailure(reply(message));
    expect(failure.reason).toMatch(reason);
    expect(failure.reason).toContain(message);
    expect(failure.retryAfter).toBe(retryAfter);
    // only a reply waiting cannot change is not "for now"
    expect(failure.transient).toBe(!message.startsWith('ERR'));
  });

  it('calls a connection error unreachable', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    expect(redisFailure(err)).toEqual({
      reason: 'Redis is unreachable (connect ECONNREFUSED 127.0.0.1:6379)',
      retryAfter: 1,
      transient: true,
    });
  });

  it('makes errors the broadcast route answers 503 with Retry-After', () => {
    const refused = refusedError(reply('OOM command not allowed when used memory > maxmemory.'));
    expect(refused).toBeInstanceOf(RedisUnavailableError);
    expect(refused).toBeInstanceOf(SseTransportUnavailableError);
    expect(refused.retryAfter).toBe(5);
    expect(refused.message).toMatch(/out of memory.*; this broadcast was not sent and will not be delivered\.$/);
    const late = timedOutError(
      'Redis did not confirm this broadcast within 1000 ms (publishTimeout).',
      reply('LOADING Redis is loading'),
    );
    expect(late.retryAfter).toBe(2);
    expect(late.message).toMatch(/within 1000 ms \(publishTimeout\)\. Last failure: Redis is loading its dataset/);
    expect(timedOutError('Redis was unreachable for 1000 ms.', undefined).retryAfter).toBe(1);
  });
});
