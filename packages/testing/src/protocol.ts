// What the test client and @nest-sse/core agree on over the wire. The testing package does not
// depend on core, so these are restated here; packages/testing/test/protocol.spec.ts checks that
// they equal core's.

/** Event core's endpoints open a stream with unless told otherwise (`welcome`). */
export const WELCOME_EVENT = 'connection';

/** Event the server sends when a `Last-Event-ID` cannot be resumed. */
export const SSE_RESET_EVENT = 'sse.reset';
