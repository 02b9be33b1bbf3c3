import { describe, it, expect } from '@jest/globals';
import { SSE_RESET_EVENT } from '@nest-sse/core';
import { DEFAULT_WELCOME } from '@nest-sse/core/internal';
import * as testing from '../src/protocol.js';

// The testing package does not depend on core, so it restates the event names it collects by
// default; they must stay what the server sends.
describe('the events SseTestClient collects by default', () => {
  it("are the server's welcome event and its reset event", () => {
    expect(testing.WELCOME_EVENT).toBe(DEFAULT_WELCOME.event);
    expect(testing.SSE_RESET_EVENT).toBe(SSE_RESET_EVENT);
  });
});
