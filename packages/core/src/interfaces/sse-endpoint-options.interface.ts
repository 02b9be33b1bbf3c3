import type { CanActivate, NestInterceptor, Type } from '@nestjs/common';
import type { SseStream } from '../connection/sse-stream.js';

/** Who may call a generated `stats` or `broadcast` route. */
export type SseRouteAccess =
  /** Open only when a guard protects the route: on the class or in `guards` (the default). */
  | 'guarded'
  /** The app's global guards (`APP_GUARD`, `useGlobalGuards`) protect it: open. */
  | 'global-guards'
  /** Anyone may call it; a warning is logged at start-up. */
  | 'public'
  /** The route answers 404. */
  | 'disabled';

/** What to do with a client that reads slower than events arrive. */
export type SseSlowClientPolicy =
  /** End its stream; its `EventSource` reconnects and resumes from its last id. */
  | 'disconnect'
  /** Drop its oldest unsent events to stay within `maxBufferSize`. */
  | 'drop-oldest';

// `Function` as in Nest's own `UseGuards` and `UseInterceptors`, which this hands them to.
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type GuardLike = CanActivate | Type<CanActivate> | Function;
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type InterceptorLike = NestInterceptor | Type<NestInterceptor> | Function;

/** Guards or interceptors for each generated route. */
export interface SseRouteEnhancers<T> {
  stream?: T[];
  stats?: T[];
  broadcast?: T[];
}

/** Metadata rules of an endpoint. */
export interface SseMetadataOptions {
  /**
   * Only these query keys become metadata; others are ignored (cache busters, tracking tags).
   * @default undefined (every key that is a valid name)
   */
  allowedKeys?: string[];
  /** @default 16 */
  maxKeys?: number;
  /** Values one key may hold (`?tag=a&tag=b`). @default 16 */
  maxValuesPerKey?: number;
  /** @default 256 (characters) */
  maxValueLength?: number;
}

/**
 * Options of `@SseEndpoint(path, options)`.
 *
 * @publicApi
 */
export interface SseEndpointOptions {
  /**
   * Seconds between heartbeat comments on a silent connection; 0 disables them.
   * @default 30 (or the module's `heartbeatInterval`)
   */
  heartbeatInterval?: number;
  /**
   * Reconnection delay sent to clients in the `retry:` field, in milliseconds.
   * @default 3000 (or the module's `retry`)
   */
  retry?: number;
  /**
   * Event sent to a new connection when the class has no `onSseConnect`; `false` sends none.
   * @default { event: 'connection', data: 'Connected to event stream' }
   */
  welcome?: false | { event?: string; data: unknown };
  /** Metadata rules for the query string. */
  metadata?: SseMetadataOptions;
  /**
   * Trusted metadata derived from the request after guards ran (for example the user id a guard
   * put on `req.user`). Its keys replace any the query string gave.
   * @example (req) => ({ user_id: String(req.user.id) })
   */
  // `req` is the framework's request (Express or Fastify), with what guards put on it
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  trustedMetadata?: (req: any) => Record<string, string | string[]> | Promise<Record<string, string | string[]>>;
  /**
   * Decides whether a connection may open, after metadata is known; `false` answers 403 before
   * any stream byte. Throw an `HttpException` for another status.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the framework's request
  authorize?: (req: any, metadata: Readonly<Record<string, string | string[]>>) => boolean | Promise<boolean>;
  /** Guards per generated route, on top of the class's own `@UseGuards`. */
  guards?: SseRouteEnhancers<GuardLike>;
  /** Interceptors per generated route, on top of the class's own `@UseInterceptors`. */
  interceptors?: SseRouteEnhancers<InterceptorLike>;
  /**
   * Who may call `GET path/stats` and `POST path/broadcast`. Both fail closed (403) unless a guard
   * protects them or you choose otherwise here.
   * @default { stats: 'guarded', broadcast: 'guarded' }
   */
  access?: { stats?: SseRouteAccess; broadcast?: SseRouteAccess };
  /**
   * Event names `POST path/broadcast` may use; others answer 400.
   * @default undefined (any valid name)
   */
  allowedEvents?: string[];
  /** Largest broadcast body, in bytes; larger answers 413. @default 65536 */
  maxBodySize?: number;
  /**
   * Open streams this endpoint accepts, across all nodes on a distributed transport; more answer 429.
   * @default unlimited
   */
  maxConnections?: number;
  /**
   * Open streams one value of a metadata key may hold (for example per `user_id`), counted over
   * every endpoint and, on a distributed transport, every node; more answer 429.
   * @example { key: 'user_id', max: 5 }
   */
  maxConnectionsPerKey?: { key: string; max: number };
  /** Bytes queued for one slow client before `slowClientPolicy` applies. @default 1048576 */
  maxBufferSize?: number;
  /** @default 'disconnect' */
  slowClientPolicy?: SseSlowClientPolicy;
  /**
   * Once the response head is sent, the stream takes the connection's socket from Node's HTTP
   * server (as an upgrade does) and writes its chunks to it directly; the connection closes when
   * the stream ends. The request, the response, the parser and the framework's per-request
   * objects are then freed: an idle stream costs well under half the memory, and each write
   * skips the HTTP layer. It applies on HTTP/1.x when no middleware has wrapped
   * `res.write`/`res.end` (compression, for one, keeps its wrapper in the path). Set `false` to
   * keep every write going through the response object; listeners on the request's or the
   * response's `'close'` then keep working, where with a taken socket `stream.onClose` (and
   * `onSseDisconnect`) report the end.
   * @default true
   */
  directSocket?: boolean;
}

/**
 * Runs for each new connection before it receives live events. Implement it on the class
 * decorated with `@SseEndpoint` to send a welcome event or set metadata.
 *
 * @example
 * onSseConnect(stream: SseStream, req: Request) {
 *   stream.send({ event: 'connection', data: `Connected to channel: ${stream.metadata.channel ?? 'global'}` });
 * }
 * @publicApi
 */
export interface OnSseConnect {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the framework's request
  onSseConnect(stream: SseStream, req: any): void | Promise<void>;
}

/** Runs when a connection of the decorated class closes, whatever the reason. */
export interface OnSseDisconnect {
  onSseDisconnect(stream: SseStream): void;
}
