import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  BadRequestException,
  ForbiddenException,
  HttpException,
  HttpStatus,
  NotFoundException,
  PayloadTooLargeException,
  ServiceUnavailableException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants.js';
import { metadataKeyProblem } from '../connection/metadata-key.js';
import { SseStream, type SseStreamHost } from '../connection/sse-stream.js';
import type { SseEndpointDefinition } from '../decorators/sse-endpoint.decorator.js';
import { assertSseField, encodeSseRetry } from '../encoding/sse-encoder.js';
import { SseEventError } from '../errors/sse-event.error.js';
import { SseTransportUnavailableError } from '../errors/sse-transport-unavailable.error.js';
import type { SseEndpointOptions, SseRouteAccess } from '../interfaces/sse-endpoint-options.interface.js';
import type { SseFilter } from '../interfaces/sse-message.interface.js';
import type { SseNodeStats } from '../interfaces/sse-transport.interface.js';
import type { SseHub } from '../sse.hub.js';
import {
  DEFAULT_HEARTBEAT_INTERVAL,
  DEFAULT_MAX_BODY_SIZE,
  DEFAULT_MAX_BUFFER,
  DEFAULT_METADATA_MAX_KEYS,
  DEFAULT_METADATA_MAX_VALUES,
  DEFAULT_METADATA_MAX_VALUE_LENGTH,
  DEFAULT_RETRY,
  LAST_EVENT_ID_QUERY,
  SSE_BROADCAST_HANDLER,
  SSE_STATS_HANDLER,
} from '../sse.constants.js';
import { routeClosed, tooManyConnections } from '../sse.messages.js';
import {
  awaitTurn,
  mediaType,
  ownConnection,
  rawRequest,
  rawResponse,
  releaseRoutingState,
  socketTakeProblem,
  takeRawResponse,
  takeSocket,
  writeSseHead,
} from './sse-http.js';
import { bodyWasRead } from './sse-body.js';
import type { SseRoutePaths } from './sse-routes.js';

const BROADCAST_FIELDS = new Set(['message', 'event_type', 'id', 'filter']);
const DEFAULT_WELCOME = { event: 'connection', data: 'Connected to event stream' };

/**
 * Answer of the broadcast route. The counts differ in scope: `endpoint_clients` is cluster-wide,
 * `reached_on_this_node` is this node's share (other nodes deliver on their own and do not report
 * back). With one node (the memory transport) both are about the same streams.
 */
export interface SseBroadcastResponse {
  success: true;
  /** The endpoint broadcast to (the `@SseEndpoint` path). */
  endpoint: string;
  /** Open streams of this endpoint on every node, read just after the broadcast. */
  endpoint_clients: number;
  /** Streams of this node (`node`) the event was written to. */
  reached_on_this_node: number;
  /** The node that answered. */
  node: string;
  /** The same as `endpoint_clients` (the older name). */
  clients: number;
  /** The same as `reached_on_this_node` (the older name). */
  clients_reached: number;
}

/** What the stats route answers. */
export interface SseEndpointStatsResponse {
  connected_clients: number;
  timestamp: string;
  backend: string;
  endpoint: string;
  endpoint_clients: number;
  endpoints: Record<string, number>;
  nodes: Array<{ node: string; connected_clients: number; endpoints: Record<string, number> }>;
}

/**
 * The behaviour behind one `@SseEndpoint`: its three routes, with the endpoint's options merged
 * over the module's defaults once (`metadata` one level deeper: its limits merge one by one).
 * @internal
 */
export class SseEndpointRuntime {
  readonly path: string;
  readonly options: Required<Pick<SseEndpointOptions, 'heartbeatInterval' | 'retry' | 'maxBodySize' | 'maxBufferSize' | 'slowClientPolicy'>> &
    SseEndpointOptions;
  private readonly host: SseStreamHost;
  private readonly maxKeys: number;
  private readonly maxValues: number;
  private readonly maxValueLength: number;
  private readonly allowedKeys: Set<string> | undefined;
  private readonly allowedEvents: Set<string> | undefined;
  private readonly statsOpen: boolean | 'disabled';
  private readonly broadcastOpen: boolean | 'disabled';

  constructor(
    private readonly hub: SseHub<any>,
    readonly definition: SseEndpointDefinition,
  ) {
    this.path = definition.path;
    const defaults = hub.options.defaults ?? {};
    const merged = { ...defaults, ...definition.options, metadata: { ...defaults.metadata, ...definition.options.metadata } };
    this.options = {
      ...merged,
      heartbeatInterval: merged.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL,
      retry: merged.retry ?? DEFAULT_RETRY,
      maxBodySize: merged.maxBodySize ?? DEFAULT_MAX_BODY_SIZE,
      maxBufferSize: merged.maxBufferSize ?? DEFAULT_MAX_BUFFER,
      slowClientPolicy: merged.slowClientPolicy ?? 'disconnect',
    };
    const meta = merged.metadata;
    this.maxKeys = meta.maxKeys ?? DEFAULT_METADATA_MAX_KEYS;
    this.maxValues = meta.maxValuesPerKey ?? DEFAULT_METADATA_MAX_VALUES;
    this.maxValueLength = meta.maxValueLength ?? DEFAULT_METADATA_MAX_VALUE_LENGTH;
    this.allowedKeys = meta.allowedKeys ? new Set(meta.allowedKeys) : undefined;
    this.allowedEvents = merged.allowedEvents ? new Set(merged.allowedEvents) : undefined;
    this.statsOpen = this.isOpen('stats', SSE_STATS_HANDLER);
    this.broadcastOpen = this.isOpen('broadcast', SSE_BROADCAST_HANDLER);
    if (this.options.maxConnectionsPerKey) hub.countedKeys.add(this.options.maxConnectionsPerKey.key);
    this.host = { ...hub.streamHost, checkMetadata: (stream, key, values) => this.checkMetadataChange(stream, key, values) };
  }

  /** `GET path/stats` or `POST path/broadcast` when it is public, for the start-up warning. */
  publicRoutes(): string[] {
    const routes: string[] = [];
    if (this.options.access?.stats === 'public') routes.push(`GET ${this.sub('stats')}`);
    if (this.options.access?.broadcast === 'public') routes.push(`POST ${this.sub('broadcast')}`);
    return routes;
  }

  /** @internal where Nest serves the routes (global prefix, module path, version), once known. */
  routes: SseRoutePaths | undefined;

  /**
   * The path one of the endpoint's routes is served at, for messages: `/api/v1/events/stats`
   * (the first, when URI versioning serves several); before start-up, the decorator's path.
   */
  sub(name: 'stats' | 'broadcast'): string {
    return this.routes?.[name][0] ?? `${this.path === '/' ? '' : this.path}/${name}`;
  }

  /** `GET path`: opens a stream. */
  async stream(instance: any, req: any, res: any): Promise<void> {
    const request = rawRequest(req);
    if (!(await awaitTurn(request, rawResponse(res)))) {
      // Pipelined behind an event stream (or its connection is gone): never served; the
      // connection closes when the stream in front ends.
      takeRawResponse(res);
      return;
    }
    if (this.hub.isDraining) {
      // A non-200 would make EventSource give up for good: answer 200, hint a later retry, end.
      const raw = takeRawResponse(res);
      writeSseHead(request, raw);
      raw.end(encodeSseRetry(this.options.retry + Math.random() * 1000));
      return;
    }
    const { metadata, lastEventId: queryLastId } = this.parseQuery(request.url ?? '');
    if (this.options.trustedMetadata) {
      const trusted = await this.options.trustedMetadata(req);
      for (const [key, value] of Object.entries(trusted ?? {})) {
        const values = (Array.isArray(value) ? value : [value]).map(String);
        metadata.set(key, values);
      }
    }
    if (this.options.authorize) {
      const view = Object.freeze(Object.fromEntries([...metadata].map(([k, v]) => [k, v.length === 1 ? v[0] : v])));
      if (!(await this.options.authorize(req, view))) throw new ForbiddenException('This stream is not open to you.');
    }
    await this.checkCapacity(metadata);
    const header = request.headers['last-event-id'];
    const lastEventId = (Array.isArray(header) ? header[0] : header) ?? queryLastId;

    const raw = takeRawResponse(res);
    if (request.method === 'HEAD') {
      // The stream's head and nothing else: no body, no stream opened or counted.
      writeSseHead(request, raw);
      raw.end();
      return;
    }
    const direct = this.options.directSocket !== false && socketTakeProblem(request, raw) === undefined;
    writeSseHead(request, raw);
    const sink = direct ? takeSocket(request, raw) : raw;
    const stream = new SseStream(
      randomUUID(),
      this.path,
      metadata,
      lastEventId,
      sink,
      this.host,
      this.options.maxBufferSize,
      this.options.slowClientPolicy,
    );
    this.hub.register(stream, this.options.heartbeatInterval * 1000, direct ? 'socket' : 'response');
    ownConnection(request, raw, () => stream.end('client'));
    if (sink.destroyed || request.socket?.destroyed) {
      // the client left while the stream was being authorized
      stream.end('client');
      return;
    }
    stream.write(encodeSseRetry(this.options.retry));
    try {
      if (typeof instance?.onSseDisconnect === 'function') {
        stream.onClose(() => instance.onSseDisconnect(stream));
      }
      if (typeof instance?.onSseConnect === 'function') {
        await instance.onSseConnect(stream, req);
      } else if (this.options.welcome !== false) {
        stream.send(this.options.welcome ?? DEFAULT_WELCOME);
      }
      const skip =
        lastEventId !== undefined && stream.isOpen
          ? await this.hub.replayInto(stream, lastEventId, this.hub.options.replayLimit ?? 10_000)
          : undefined;
      stream.open(skip);
      // a taken socket already let go of the whole request
      if (!direct) releaseRoutingState(req);
    } catch (err) {
      // The head is sent: the client can only see the stream end. The details go to the log.
      this.hub.logger.error(
        `Opening a stream of ${this.path} failed: ${(err as Error)?.message ?? err}`,
        (err as Error)?.stack,
      );
      stream.end('error');
    }
  }

  /** `GET path/stats`. */
  async stats(req: any, res: any): Promise<SseEndpointStatsResponse> {
    this.assertAccess(this.statsOpen, 'stats');
    await this.assertTurn(req, res);
    const stats = await this.hub.stats();
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
  async broadcast(req: any, body: unknown, res: any): Promise<SseBroadcastResponse> {
    this.assertAccess(this.broadcastOpen, 'broadcast');
    await this.assertTurn(req, res);
    const request = rawRequest(req);
    const type = mediaType(request);
    if (type !== 'application/json' && !(type?.endsWith('+json') ?? false)) {
      throw new UnsupportedMediaTypeException(
        `POST ${this.sub('broadcast')} takes a JSON body (Content-Type: application/json); got ${type ? `'${type}'` : 'no Content-Type'}.`,
      );
    }
    if (!bodyWasRead(request)) this.checkUnreadBody(request);
    const message = this.parseBroadcast(body);
    let reached: number;
    try {
      reached = await this.hub.broadcast({ ...message, endpoint: this.path } as any);
    } catch (err) {
      if (err instanceof SseEventError) throw new BadRequestException(err.message);
      if (err instanceof SseTransportUnavailableError) {
        setHeader(res, 'Retry-After', String(err.retryAfter));
        throw new ServiceUnavailableException(`The broadcast was not published: ${err.message}`);
      }
      throw err;
    }
    const stats = await this.hub.stats();
    const clients = stats.endpoints[this.path] ?? 0;
    return {
      success: true,
      endpoint: this.path,
      endpoint_clients: clients,
      reached_on_this_node: reached,
      node: this.hub.nodeId,
      clients,
      clients_reached: reached,
    };
  }

  /**
   * A body the module's reader did not read (a route path it could not match: RouterModule, URI
   * versioning): only what can be checked from the headers is accepted, plain and with its length.
   */
  private checkUnreadBody(request: IncomingMessage): void {
    const max = this.options.maxBodySize;
    const encoding = request.headers['content-encoding']?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      throw new UnsupportedMediaTypeException(`POST ${this.sub('broadcast')} takes compressed bodies only at its own path; send this one plain.`);
    }
    const length = Number(request.headers['content-length']);
    if (!Number.isInteger(length)) {
      throw new HttpException(`POST ${this.sub('broadcast')} needs a Content-Length here (at most ${max} bytes).`, HttpStatus.LENGTH_REQUIRED);
    }
    if (length > max) {
      throw new PayloadTooLargeException(`The broadcast body is ${length} bytes; this endpoint takes at most ${max} (maxBodySize).`);
    }
  }

  /** A request pipelined behind an event stream is not served (see `awaitTurn`). */
  private async assertTurn(req: any, res: any): Promise<void> {
    if (!(await awaitTurn(rawRequest(req), rawResponse(res)))) {
      throw new ServiceUnavailableException('This connection is held by an event stream; send other requests on another connection.');
    }
  }

  private parseBroadcast(body: unknown): { event: string; data: unknown; id?: string; filter?: SseFilter } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new BadRequestException('The broadcast body must be a JSON object: { "message": ..., "event_type"?, "id"?, "filter"? }.');
    }
    const fields = body as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (!BROADCAST_FIELDS.has(key)) {
        throw new BadRequestException(`Unknown field '${key}'; a broadcast takes message, event_type, id and filter.`);
      }
    }
    if (fields.message === undefined) throw new BadRequestException('message is required.');
    const bad = (text: string): never => {
      throw new BadRequestException(text);
    };
    let event = 'message';
    if (fields.event_type !== undefined) {
      try {
        event = assertSseField('event', fields.event_type);
      } catch (err) {
        bad(`event_type: ${(err as Error).message.replace(/^event /, '')}`);
      }
    }
    if (this.allowedEvents && !this.allowedEvents.has(event)) {
      bad(`event_type '${event}' is not allowed here; allowed: ${[...this.allowedEvents].join(', ')}.`);
    }
    let id: string | undefined;
    if (fields.id !== undefined && fields.id !== null) {
      const raw = typeof fields.id === 'number' ? String(fields.id) : fields.id;
      try {
        id = assertSseField('id', raw);
      } catch (err) {
        bad(`id: ${(err as Error).message.replace(/^id /, '')}`);
      }
    }
    let filter: unknown = fields.filter;
    if (typeof filter === 'string') {
      try {
        filter = JSON.parse(filter);
      } catch {
        bad('filter is a string but not valid JSON; send an object such as {"channel":"news"}.');
      }
    }
    // The filter's shape, keys and values are checked where every broadcast is: normalizeFilter.
    if (filter === null) filter = undefined;
    return { event, data: fields.message, id, filter: filter as SseFilter | undefined };
  }

  private parseQuery(url: string): { metadata: Map<string, string[]>; lastEventId: string | undefined } {
    const metadata = new Map<string, string[]>();
    let lastEventId: string | undefined;
    const q = url.indexOf('?');
    if (q === -1) return { metadata, lastEventId };
    for (const [key, value] of new URLSearchParams(url.slice(q + 1))) {
      if (key === LAST_EVENT_ID_QUERY) {
        lastEventId ??= value;
        continue;
      }
      if (this.allowedKeys && !this.allowedKeys.has(key)) continue;
      this.checkKey(key, failRequest);
      let values = metadata.get(key);
      if (values === undefined) {
        if (metadata.size >= this.maxKeys) {
          throw new BadRequestException(`Too many metadata keys in the query: at most ${this.maxKeys}.`);
        }
        metadata.set(key, (values = []));
      }
      if (values.length >= this.maxValues) {
        throw new BadRequestException(`Metadata key '${key}' has more than ${this.maxValues} values.`);
      }
      this.checkValue(key, value, failRequest);
      values.push(value);
    }
    return { metadata, lastEventId };
  }

  private checkKey(key: string, fail: (message: string) => never): void {
    const problem = metadataKeyProblem(key);
    if (problem !== undefined) fail(`Metadata key ${problem}.`);
  }

  private checkValue(key: string, value: string, fail: (message: string) => never): void {
    if (value.length > this.maxValueLength) {
      fail(`Metadata '${key}' is ${value.length} characters long; the limit is ${this.maxValueLength}.`);
    }
  }

  /** Limits for `stream.setMetadata` in code: the query's rules, thrown as `SseEventError`. */
  private checkMetadataChange(stream: SseStream, key: string, values: readonly string[]): void {
    this.checkKey(key, failInCode);
    if (values.length > this.maxValues) failInCode(`Metadata key '${key}' has more than ${this.maxValues} values.`);
    for (const value of values) this.checkValue(key, value, failInCode);
    if (!stream.getMetadataValues(key).length && Object.keys(stream.metadata).length >= this.maxKeys) {
      failInCode(`Too many metadata keys: at most ${this.maxKeys}.`);
    }
  }

  /**
   * Connection limits, counted across the cluster on a distributed transport: this node's exact
   * counts plus the other nodes' last reported ones (at most about a second old).
   */
  private async checkCapacity(metadata: Map<string, string[]>): Promise<void> {
    const registry = this.hub.registry;
    const nodeMax = this.hub.options.maxConnections;
    const max = this.options.maxConnections;
    const perKey = this.options.maxConnectionsPerKey;
    if (nodeMax === undefined && max === undefined && perKey === undefined) return;
    const others = await this.hub.otherNodes();
    const elsewhere = (count: (node: SseNodeStats) => number | undefined): number =>
      others.reduce((sum, node) => sum + (count(node) ?? 0), 0);
    if (nodeMax !== undefined && registry.size + elsewhere((n) => n.connected) >= nodeMax) {
      throw new HttpException(tooManyConnections('in this app', nodeMax), HttpStatus.TOO_MANY_REQUESTS);
    }
    if (max !== undefined && registry.endpointSize(this.path) + elsewhere((n) => n.endpoints[this.path]) >= max) {
      throw new HttpException(tooManyConnections(`on ${this.path}`, max), HttpStatus.TOO_MANY_REQUESTS);
    }
    if (perKey !== undefined) {
      for (const value of metadata.get(perKey.key) ?? []) {
        if (registry.countByValue(perKey.key, value) + elsewhere((n) => n.keys?.[perKey.key]?.[value]) >= perKey.max) {
          throw new HttpException(tooManyConnections(`for this ${perKey.key}`, perKey.max), HttpStatus.TOO_MANY_REQUESTS);
        }
      }
    }
  }

  private isOpen(key: 'stats' | 'broadcast', member: string): boolean | 'disabled' {
    const access: SseRouteAccess = this.options.access?.[key] ?? 'guarded';
    if (access === 'disabled') return 'disabled';
    if (access === 'public' || access === 'global-guards') return true;
    const target = this.definition.target;
    const classGuards: unknown[] = Reflect.getMetadata(GUARDS_METADATA, target) ?? [];
    const routeGuards: unknown[] = Reflect.getMetadata(GUARDS_METADATA, target.prototype[member]) ?? [];
    return classGuards.length + routeGuards.length > 0;
  }

  private assertAccess(open: boolean | 'disabled', key: 'stats' | 'broadcast'): void {
    if (open === true) return;
    const route = `${key === 'stats' ? 'GET' : 'POST'} ${this.sub(key)}`;
    if (open === 'disabled') throw new NotFoundException(`Cannot ${route}`);
    throw new ForbiddenException(routeClosed(route, this.definition.target.name, key));
  }
}

/** Sets a header on an Express response or a Fastify reply. */
function setHeader(res: any, name: string, value: string): void {
  if (typeof res?.header === 'function') res.header(name, value);
  else rawResponse(res)?.setHeader(name, value);
}

function failRequest(message: string): never {
  throw new BadRequestException(message);
}

function failInCode(message: string): never {
  throw new SseEventError(message);
}
