// The welcome event name core's endpoints send by default is not part of core's public API, so
// the test client restates it here; packages/testing/test/protocol.spec.ts checks that it equals
// core's.

/** Event core's endpoints open a stream with unless told otherwise (`welcome`). */
export const WELCOME_EVENT = 'connection';
