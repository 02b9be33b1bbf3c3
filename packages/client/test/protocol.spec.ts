import { describe, it, expect } from '@jest/globals';
import * as client from '@nest-sse/client';
import { LAST_EVENT_ID_HEADER as CLIENT_HEADER } from '../src/protocol.js';
import * as core from '@nest-sse/core';
import { LAST_EVENT_ID_HEADER as CORE_HEADER } from '@nest-sse/core/internal';

// The client does not depend on core (it runs in browsers), so it restates the protocol's names;
// they must stay what the server uses.
describe('the protocol the client and the server share', () => {
  it('names the reset event as the server sends it', () => {
    expect(client.SSE_RESET_EVENT).toBe(core.SSE_RESET_EVENT);
  });

  it('resumes through the query parameter the server reads', () => {
    expect(client.LAST_EVENT_ID_QUERY).toBe(core.LAST_EVENT_ID_QUERY);
  });

  it('sends the last id in the header the server reads', () => {
    expect(CLIENT_HEADER.toLowerCase()).toBe(CORE_HEADER);
  });
});
