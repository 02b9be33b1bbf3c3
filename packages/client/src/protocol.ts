// What the client and @nest-sse/core agree on over the wire. The client does not depend on core,
// so these are restated here; packages/client/test/protocol.spec.ts checks that they equal core's.

/** Query parameter the server reads in place of the `Last-Event-ID` header. */
export const LAST_EVENT_ID_QUERY = 'lastEventId';

/** Header a reconnecting client sends its last event id in (the fetch connection sets it itself). */
export const LAST_EVENT_ID_HEADER = 'Last-Event-ID';

/** Event the server sends when a `Last-Event-ID` cannot be resumed. */
export const SSE_RESET_EVENT = 'sse.reset';
