import type { IncomingMessage } from 'node:http';
import {
  BadRequestException,
  HttpException,
  HttpStatus,
  PayloadTooLargeException,
  ServiceUnavailableException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { assertSseField } from '../encoding/sse-encoder.js';
import { SseEventError } from '../errors/sse-event.error.js';
import { SseTransportUnavailableError } from '../errors/sse-transport-unavailable.error.js';
import type { SseFilter } from '../interfaces/sse-message.interface.js';
import type { SseBroadcastResponse } from '../interfaces/sse-route-responses.interface.js';
import type { SseHub } from '../sse.hub.js';
import { isJsonMediaType, mediaType } from './content-type.js';
import { setHeader, type FrameworkResponse } from './framework-adapter.js';
import { bodyWasRead } from './sse-body.js';

const BROADCAST_FIELDS = new Set(['message', 'event_type', 'id', 'filter']);

/** What `POST path/broadcast` of one endpoint needs to know. */
export interface SseBroadcastRoute {
  /** The endpoint (the `@SseEndpoint` path). */
  path: string;
  /** The route as messages name it: `POST /api/events/broadcast`. */
  route(): string;
  maxBodySize: number;
  allowedEvents: ReadonlySet<string> | undefined;
}

/** A broadcast as the route's JSON body gives it, checked. */
export interface SseRouteBroadcast {
  event: string;
  data: unknown;
  id?: string;
  filter?: SseFilter;
}

/**
 * `POST path/broadcast` once access and turn are settled: a JSON body, read and limited by the
 * module's reader (or checked from its headers when that reader could not), published through
 * the hub, answered with the counts.
 */
export async function broadcastThrough(
  hub: SseHub,
  route: SseBroadcastRoute,
  request: IncomingMessage,
  body: unknown,
  res: FrameworkResponse,
): Promise<SseBroadcastResponse> {
  const type = mediaType(request);
  if (!isJsonMediaType(type)) {
    throw new UnsupportedMediaTypeException(
      `${route.route()} takes a JSON body (Content-Type: application/json); got ${type ? `'${type}'` : 'no Content-Type'}.`,
    );
  }
  if (!bodyWasRead(request)) checkUnreadBody(route, request);
  const message = parseBroadcast(body, route.allowedEvents);
  let reached: number;
  try {
    reached = await hub.broadcast({ ...message, endpoint: route.path });
  } catch (err) {
    if (err instanceof SseEventError) throw new BadRequestException(err.message);
    if (err instanceof SseTransportUnavailableError) {
      setHeader(res, 'Retry-After', String(err.retryAfter));
      throw new ServiceUnavailableException(`The broadcast was not published: ${err.message}`);
    }
    throw err;
  }
  const stats = await hub.stats();
  const clients = stats.endpoints[route.path] ?? 0;
  return {
    success: true,
    endpoint: route.path,
    endpoint_clients: clients,
    reached_on_this_node: reached,
    node: hub.nodeId,
    clients,
    clients_reached: reached,
  };
}

/**
 * A body the module's reader did not read (a route path it could not match: RouterModule, URI
 * versioning): only what can be checked from the headers is accepted, plain and with its length.
 */
function checkUnreadBody(route: SseBroadcastRoute, request: IncomingMessage): void {
  const max = route.maxBodySize;
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    throw new UnsupportedMediaTypeException(
      `${route.route()} takes compressed bodies only at its own path; send this one plain.`,
    );
  }
  const length = Number(request.headers['content-length']);
  if (!Number.isInteger(length)) {
    throw new HttpException(`${route.route()} needs a Content-Length here (at most ${max} bytes).`, HttpStatus.LENGTH_REQUIRED);
  }
  if (length > max) {
    throw new PayloadTooLargeException(
      `The broadcast body is ${length} bytes; this endpoint takes at most ${max} (maxBodySize).`,
    );
  }
}

/** The route's body as a broadcast: `{ message, event_type?, id?, filter? }`; 400 for anything else. */
export function parseBroadcast(body: unknown, allowedEvents: ReadonlySet<string> | undefined): SseRouteBroadcast {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestException(
      'The broadcast body must be a JSON object: { "message": ..., "event_type"?, "id"?, "filter"? }.',
    );
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
  if (allowedEvents && !allowedEvents.has(event)) {
    bad(`event_type '${event}' is not allowed here; allowed: ${[...allowedEvents].join(', ')}.`);
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
