/** Metadata key under which `@SseEndpoint` stores its definition on the class. */
export const SSE_ENDPOINT_METADATA = 'nest-sse:endpoint';
/** Injection token of the options given to `SseModule.forRoot` / `forRootAsync`. */
export const SSE_MODULE_OPTIONS = 'SSE_MODULE_OPTIONS';
/** Property the decorator injects the endpoint runtimes into on the decorated controller. */
export const SSE_RUNTIMES_PROPERTY = '__nestSseRuntimes';

/** Names of the handlers `@SseEndpoint` adds to the decorated class. */
export const SSE_STREAM_HANDLER = 'sseStream';
export const SSE_STATS_HANDLER = 'sseStats';
export const SSE_BROADCAST_HANDLER = 'sseBroadcast';

/** Query parameter a first connection may use in place of the `Last-Event-ID` header. */
export const LAST_EVENT_ID_QUERY = 'lastEventId';
/** Header a reconnecting client sends the last id it saw in (as Node lower-cases it). */
export const LAST_EVENT_ID_HEADER = 'last-event-id';
/**
 * `node:diagnostics_channel` names on which every stream's open and close are published
 * (`SseStreamOpenMessage`, `SseStreamCloseMessage`), for APM tools to start and end spans.
 */
export const SSE_STREAM_OPEN_CHANNEL = 'nest-sse:stream:open';
export const SSE_STREAM_CLOSE_CHANNEL = 'nest-sse:stream:close';
/** Event sent when a `Last-Event-ID` cannot be resumed from history. */
export const SSE_RESET_EVENT = 'sse.reset';

export const DEFAULT_HEARTBEAT_INTERVAL = 30;
export const DEFAULT_RETRY = 3000;
/** The event a stream opens with unless its endpoint says otherwise (`welcome`). */
export const DEFAULT_WELCOME = { event: 'connection', data: 'Connected to event stream' } as const;
export const DEFAULT_MAX_BODY_SIZE = 64 * 1024;
export const DEFAULT_MAX_BUFFER = 1024 * 1024;
export const DEFAULT_METADATA_MAX_KEYS = 16;
export const DEFAULT_METADATA_MAX_VALUES = 16;
export const DEFAULT_METADATA_MAX_VALUE_LENGTH = 256;
export const DEFAULT_HISTORY_SIZE = 1000;
export const DEFAULT_HISTORY_MAX_AGE = 5 * 60_000;
export const DEFAULT_DRAIN_TIMEOUT = 1000;
export const DEFAULT_READY_TIMEOUT = 30_000;

/** Longest id and event name accepted, in characters; ids travel back in a header. */
export const MAX_ID_LENGTH = 128;
export const MAX_EVENT_LENGTH = 256;
