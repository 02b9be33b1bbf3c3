import { describe, expect, it } from '@jest/globals';
import { SseClient, type SseClientOptions } from '@nest-sse/client';
import { EventSource } from 'eventsource';

/** The TypeError a client with these options is refused with (it never connects). */
function refused(options: unknown): TypeError {
  try {
    new SseClient('http://127.0.0.1:1/feed', options as SseClientOptions).close();
  } catch (err) {
    expect(err).toBeInstanceOf(TypeError);
    return err as TypeError;
  }
  throw new Error('expected the options to be refused');
}

describe('SseClient options', () => {
  it('refuses a misspelt option, naming the nearest one, nested too', () => {
    expect(refused({ shared: 'page' }).message).toBe(
      'SseClient options: shared is not a known option; did you mean share? ' +
        'Known: connection, EventSource, fetch, headers, query, withCredentials, credentials, lastEventId, share, backoff, parse.',
    );
    expect(refused({ backoff: { initalDelay: 500 } }).message).toBe(
      'SseClient option backoff: initalDelay is not a known option; did you mean initialDelay? Known: initialDelay, maxDelay, factor.',
    );
    expect(refused({ colour: 'red' }).message).toMatch(/^SseClient options: colour is not a known option\. Known: /);
  });

  it('refuses delays that would reconnect in a loop, naming the option, the value and the rule', () => {
    expect(refused({ backoff: { initialDelay: Number('unset') } }).message).toBe(
      'SseClient option backoff.initialDelay is NaN; it must be an integer from 1 to 2147483647 (ms).',
    );
    expect(refused({ backoff: { maxDelay: -1 } }).message).toMatch(/backoff\.maxDelay is -1; it must be an integer/);
    expect(refused({ backoff: { maxDelay: 0.5 } }).message).toMatch(/backoff\.maxDelay is 0\.5/);
    expect(refused({ backoff: { factor: 0.5 } }).message).toBe(
      'SseClient option backoff.factor is 0.5; it must be a number of at least 1.',
    );
  });

  it('refuses values of the wrong kind', () => {
    expect(refused({ connection: 'fetchh' }).message).toBe(
      'SseClient option connection is "fetchh"; it must be one of "event-source", "fetch".',
    );
    expect(refused({ share: true }).message).toMatch(/share is true; it must be one of "tabs", "page", false\./);
    expect(refused({ headers: 'Bearer x' }).message).toMatch(/headers is "Bearer x"; it must be an object or a function\./);
    expect(refused({ withCredentials: 'yes' }).message).toMatch(/withCredentials is "yes"; it must be a boolean\./);
    expect(refused({ EventSource: {} }).message).toMatch(/EventSource is an object; it must be a function\./);
    expect(refused(null).message).toBe('SseClient options are null; they must be an object.');
  });

  it('takes every option at a valid value', () => {
    const client = new SseClient('http://127.0.0.1:1/feed', {
      connection: 'event-source',
      EventSource,
      fetch,
      query: () => ({ t: '1' }),
      withCredentials: false,
      credentials: 'same-origin',
      lastEventId: 'a-1',
      share: false,
      backoff: { initialDelay: 1, maxDelay: 2_147_483_647, factor: 1 },
      parse: { tick: 'json' },
    });
    client.close();
  });
});
