import { describe, it, expect } from '@jest/globals';
import { DEFAULT_WELCOME } from '@nest-sse/core/internal';
import * as testing from '../src/protocol.js';

// The test client restates the name of core's default welcome event (not a public export of
// core); it must stay what the server sends.
describe('the events SseTestClient collects by default', () => {
  it("include the server's welcome event", () => {
    expect(testing.WELCOME_EVENT).toBe(DEFAULT_WELCOME.event);
  });
});
