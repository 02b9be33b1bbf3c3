import { randomUUID } from 'node:crypto';
import { BadRequestException, ForbiddenException, HttpException, HttpStatus, ServiceUnavailableException } from '@nestjs/common';
import { MetadataRules } from '../connection/metadata-rules.js';
import type { SseSink } from '../connection/sse-sink.js';
import { SseStream, type SseStreamHost } from '../connection/sse-stream.js';
import type { SseEndpointDefinition } from '../decorators/sse-endpoint.definition.js';
import { encodeSseRetry } from '../encoding/sse-encoder.js';
import { encodeSseMessage } from '../encoding/sse-message.js';
import { SseTransportUnavailableError } from '../errors/sse-transport-unavailable.error.js';
import type { ClusterCounts } from '../hub/cluster-counts.js';
import type { LocalStreams } from '../hub/local-streams.js';
import type { SseNode } from '../hub/sse-node.js';
import { retryAfterSeconds, retryHint, RETRY_SPREAD, sendAway } from '../hub/stream-drain.js';
import type { StreamReplay } from '../hub/stream-replay.js';
import type { OnSseConnect, OnSseDisconnect } from '../interfaces/sse-endpoint-options.interface.js';
import type { SseModuleOptions } from '../interfaces/sse-module-options.interface.js';
import type { SseBroadcastResponse, SseEndpointStatsResponse } from '../interfaces/sse-route-responses.interface.js';
import type { SseHub } from '../sse.hub.js';
import { DEFAULT_WELCOME, LAST_EVENT_ID_HEADER } from '../sse.constants.js';
import { broadcastThrough, type SseBroadcastRoute } from './broadcast.route.js';
import { checkConnectionLimits, type SseConnectionLimits } from './connection-limits.js';
import { assertKeyReachable, resolveEndpointOptions, type SseResolvedEndpointOptions } from './endpoint-options.js';
import {
  rawRequest,
  rawResponse,
  releaseRoutingState,
  setHeader,
  takeRawResponse,
  type FrameworkRequest,
  type FrameworkResponse,
} from './framework-adapter.js';
import { assertRouteOpen, routeState, type SseRouteState } from './route-access.js';
import type { SseRoutePaths } from './sse-routes.js';
import { socketTakeProblem, takeSocket } from './socket-take.js';
import { awaitTurn } from './request-turn.js';
import { holdStreamSocket, ownConnection, sseHeadBytes, writeSseHead } from './stream-connection.js';

const DEFAULT_REPLAY_LIMIT = 10_000;

/** The parts of the hub an endpoint works with, handed over by `SseEndpointRuntimes`. */
export interface SseEndpointParts {
  /** The public API: broadcasts and cluster stats for the stats and broadcast routes. */
  hub: SseHub;
  moduleOptions: SseModuleOptions;
  node: SseNode;
  streams: LocalStreams;
  replay: StreamReplay;
  counts: ClusterCounts;
}

/** A controller instance of an `@SseEndpoint` class, with the hooks it may have. */
type EndpointInstance = Partial<OnSseConnect & OnSseDisconnect>;

/**
 * The behaviour behind one `@SseEndpoint`: its three routes, with the endpoint's options merged
 * over the module's defaults once.
 */
export class SseEndpointRuntime {
  readonly path: string;
  readonly options: SseResolvedEndpointOptions;
  /** Where Nest serves the routes (global prefix, module path, version), once known. */
  routes: SseRoutePaths | undefined;
  private readonly metadata: MetadataRules;
  private readonly host: SseStreamHost;
  private readonly limits: SseConnectionLimits;
  private readonly broadcastRoute: SseBroadcastRoute;
  private readonly statsOpen: SseRouteState;
  private readonly broadcastOpen: SseRouteState;
  /** The `retry` field and the welcome event: the same bytes for every stream, encoded once. */
  private readonly retryFrame: Buffer;
  private readonly welcome: ReturnType<typeof encodeSseMessage> | undefined;

  constructor(
    readonly definition: SseEndpointDefinition,
    private readonly parts: SseEndpointParts,
  ) {
    this.path = definition.path;
    const options = resolveEndpointOptions(parts.moduleOptions, definition.options);
    this.options = options;
    this.metadata = new MetadataRules(options.metadata);
    this.retryFrame = encodeSseRetry(options.retry);
    this.welcome = options.welcome === false ? undefined : encodeSseMessage(options.welcome ?? DEFAULT_WELCOME);
    this.limits = {
      app: parts.moduleOptions.maxConnections,
      endpoint: options.maxConnections,
      perKey: options.maxConnectionsPerKey,
    };
    this.broadcastRoute = {
      path: this.path,
      route: () => `POST ${this.sub('broadcast')}`,
      maxBodySize: options.maxBodySize,
      allowedEvents: options.allowedEvents ? new Set(options.allowedEvents) : undefined,
    };
    this.statsOpen = routeState(options.access?.stats, definition.target, 'stats');
    this.broadcastOpen = routeState(options.access?.broadcast, definition.target, 'broadcast');
    if (options.maxConnectionsPerKey) {
      assertKeyReachable(options, `@SseEndpoint('${this.path}') on ${definition.target.name}`);
      parts.counts.countKey(options.maxConnectionsPerKey.key);
    }
    const rules = this.metadata;
    this.host = {
      ...parts.streams.host,
      checkMetadata: (stream, key, value) => rules.checkChange(stream.metadata, key, value),
    };
  }

  /** `GET path/stats` or `POST path/broadcast` when it is public, for the start-up warning. */
  publicRoutes(): string[] {
    const routes: string[] = [];
    if (this.options.access?.stats === 'public') routes.push(`GET ${this.sub('stats')}`);
    if (this.options.access?.broadcast === 'public') routes.push(`POST ${this.sub('broadcast')}`);
    return routes;
  }

  /**
   * The path one of the endpoint's routes is served at, for messages: `/api/v1/events/stats`
   * (the first, when URI versioning serves several); before start-up, the decorator's path.
   */
  sub(name: 'stats' | 'broadcast'): string {
    return this.routes?.[name][0] ?? `${this.path === '/' ? '' : this.path}/${name}`;
  }

  /** `GET path`: opens a stream. */
  async stream(instance: EndpointInstance | undefined, req: FrameworkRequest, res: FrameworkResponse): Promise<void> {
    const { hub, streams, replay, counts, node } = this.parts;
    const request = rawRequest(req);
    if (!(await awaitTurn(request, rawResponse(res)))) {
      // Pipelined behind an event stream (or its connection is gone): never served; the
      // connection closes when the stream in front ends.
      takeRawResponse(res);
      return;
    }
    if (hub.isDraining) {
      // A non-200 would make EventSource give up for good: answer 200, hint a later retry, end.
      const raw = takeRawResponse(res);
      writeSseHead(request, raw);
      raw.end(retryHint(this.options.retry, RETRY_SPREAD));
      return;
    }
    const { metadata, lastEventId: queryLastId } = this.metadata.fromQuery(request.url ?? '', failRequest);
    if (this.options.trustedMetadata) this.metadata.addTrusted(metadata, await this.options.trustedMetadata(req));
    if (this.options.authorize) {
      const view = Object.freeze(Object.fromEntries([...metadata].map(([k, v]) => [k, v.length === 1 ? v[0] : v])));
      if (!(await this.options.authorize(req, view))) throw new ForbiddenException('This stream is not open to you.');
    }
    await checkConnectionLimits(this.limits, this.path, metadata, streams, counts).catch((err: unknown) => {
      // A stream refused at a limit may be taken once others close: a client that reads the
      // status (the fetch connection of @nest-sse/client) waits the endpoint's retry delay.
      if (err instanceof HttpException && err.getStatus() === HttpStatus.TOO_MANY_REQUESTS) {
        setHeader(res, 'Retry-After', String(retryAfterSeconds(this.options.retry)));
      }
      throw err;
    });
    const header = request.headers[LAST_EVENT_ID_HEADER];
    const lastEventId = (Array.isArray(header) ? header[0] : header) ?? queryLastId;
    // A routing transport must be delivering this stream's values before the client sees it open.
    const following = streams.following((key) => metadata.get(key));
    if (following !== undefined) {
      await following.catch((err: unknown) => {
        if (!(err instanceof SseTransportUnavailableError)) throw err;
        setHeader(res, 'Retry-After', String(Math.max(err.retryAfter, retryAfterSeconds(this.options.retry))));
        throw new ServiceUnavailableException(`This stream cannot open now: ${err.message}`);
      });
    }

    const raw = takeRawResponse(res);
    if (request.method === 'HEAD') {
      // The stream's head and nothing else: no body, no stream opened or counted.
      writeSseHead(request, raw);
      raw.end();
      return;
    }
    const direct = this.options.directSocket !== false && socketTakeProblem(request, raw) === undefined;
    let sink: SseSink = raw;
    if (direct && request.httpVersionMinor >= 1) {
      // the head goes out with retry, the welcome event and whatever else is ready in one write
      sink = takeSocket(request, raw, sseHeadBytes(raw));
    } else {
      writeSseHead(request, raw);
      if (direct) sink = takeSocket(request, raw);
    }
    holdStreamSocket(request.socket, this.options.heartbeatInterval > 0);
    const { maxBufferSize, slowClientPolicy } = this.options;
    const stream = new SseStream(
      randomUUID(),
      this.path,
      metadata,
      lastEventId,
      sink,
      this.host,
      maxBufferSize,
      slowClientPolicy,
    );
    streams.register(stream, this.options.heartbeatInterval * 1000, direct ? 'socket' : 'response');
    ownConnection(request, raw, () => stream.end('client'));
    if (sink.destroyed || request.socket?.destroyed) {
      // the client left while the stream was being authorized
      stream.end('client');
      return;
    }
    stream.write(this.retryFrame);
    try {
      if (typeof instance?.onSseDisconnect === 'function') {
        stream.onClose(() => instance.onSseDisconnect!(stream));
      }
      if (typeof instance?.onSseConnect === 'function') {
        await instance.onSseConnect(stream, req);
      } else if (this.welcome !== undefined) {
        stream.write(this.welcome.frame, this.welcome.written);
      }
      // the connect hook may have changed what the stream holds
      const refollow = streams.following((key) => stream.getMetadataValues(key));
      if (
        refollow !== undefined &&
        !(await refollow.then(
          () => true,
          (err: unknown) => this.sendAway(stream, err),
        ))
      )
        return;
      const limit = this.parts.moduleOptions.replayLimit ?? DEFAULT_REPLAY_LIMIT;
      const skip =
        lastEventId !== undefined && stream.isOpen
          ? await replay.replayInto(stream, lastEventId, limit, this.options.retry)
          : undefined;
      stream.open(skip);
      // a taken socket already let go of the whole request
      if (!direct) releaseRoutingState(req);
    } catch (err) {
      // The head is sent: the client can only see the stream end. The details go to the log.
      node.error(`Opening a stream of ${this.path} failed`, err);
      stream.end('error');
    }
  }

  /** Sends an opening stream away (false) when the transport cannot serve it for now; rethrows anything else. */
  private sendAway(stream: SseStream, err: unknown): false {
    if (!(err instanceof SseTransportUnavailableError)) throw err;
    sendAway(stream, this.options.retry, err, (text) => this.parts.node.logger.warn(text));
    return false;
  }

  /** `GET path/stats`. */
  async stats(req: FrameworkRequest, res: FrameworkResponse): Promise<SseEndpointStatsResponse> {
    assertRouteOpen(this.statsOpen, `GET ${this.sub('stats')}`, this.definition.target, 'stats');
    await this.assertTurn(req, res);
    const stats = await this.parts.hub.stats();
    return {
      connected_clients: stats.connected_clients,
      timestamp: stats.timestamp,
      backend: stats.backend,
      endpoint: this.path,
      endpoint_clients: stats.endpoints[this.path] ?? 0,
      endpoints: stats.endpoints,
      nodes: stats.nodes,
    };
  }

  /** `POST path/broadcast`. */
  async broadcast(req: FrameworkRequest, body: unknown, res: FrameworkResponse): Promise<SseBroadcastResponse> {
    assertRouteOpen(this.broadcastOpen, `POST ${this.sub('broadcast')}`, this.definition.target, 'broadcast');
    await this.assertTurn(req, res);
    return broadcastThrough(this.parts.hub, this.broadcastRoute, rawRequest(req), body, res);
  }

  /** A request pipelined behind an event stream is not served (see `awaitTurn`). */
  private async assertTurn(req: FrameworkRequest, res: FrameworkResponse): Promise<void> {
    if (!(await awaitTurn(rawRequest(req), rawResponse(res)))) {
      throw new ServiceUnavailableException(
        'This connection is held by an event stream; send other requests on another connection.',
      );
    }
  }
}

function failRequest(message: string): never {
  throw new BadRequestException(message);
}
