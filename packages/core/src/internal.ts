// The package's internals, for its own tests. Not an entry point of the published package (its
// package.json exports only "."), so nothing here is public API.
export type { SseStreamHost } from './connection/sse-stream.js';
export type { SseSink } from './connection/sse-sink.js';
export { MetadataRules, metadataKeyProblem } from './connection/metadata-rules.js';
export { ConnectionRegistry } from './connection/connection-registry.js';
export { HeartbeatScheduler } from './connection/heartbeat.scheduler.js';
export { ChunkedSocketSink, chunkOf, COPY_LIMIT } from './http/chunked-socket.sink.js';
export { MAX_PIPELINED } from './http/request-turn.js';
export { LocalStreams } from './hub/local-streams.js';
export { PublishReceipts, ECHO_TIMEOUT } from './hub/publish-receipts.js';
export { SseNode } from './hub/sse-node.js';
export { StreamDrain, retryHint, RETRY_SPREAD } from './hub/stream-drain.js';
export { WriteScheduler } from './hub/write-scheduler.js';
export { DEFAULT_WELCOME, LAST_EVENT_ID_HEADER } from './sse.constants.js';
