import { Logger, type Provider } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { SseEndpointRuntime } from '../http/sse-endpoint.runtime.js';
import { SSE_ID_FORM } from '../encoding/sse-encoder.js';
import { sseEndpoints } from '../sse.explorer.js';
import { SseHub } from '../sse.hub.js';
import {
  LAST_EVENT_ID_QUERY,
  MAX_EVENT_LENGTH,
  MAX_ID_LENGTH,
  SSE_BROADCAST_HANDLER,
  SSE_RESET_EVENT,
  SSE_STATS_HANDLER,
  SSE_STREAM_HANDLER,
} from '../sse.constants.js';

/** Injection token of the provider that documents the generated routes. */
export const SSE_OPENAPI = 'SSE_OPENAPI';
const DOCUMENTED = 'nest-sse:openapi';

/** JSON Schema of the body `POST path/broadcast` takes. */
export const SSE_BROADCAST_BODY_SCHEMA = {
  type: 'object',
  required: ['message'],
  additionalProperties: false,
  properties: {
    message: {
      description: 'The event data: a string is sent as it is, anything else as JSON.',
      oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'object' }, { type: 'array', items: {} }],
    },
    event_type: {
      type: 'string',
      description: 'Event name (the `event:` field); no CR, LF or NUL.',
      default: 'message',
      maxLength: MAX_EVENT_LENGTH,
    },
    id: {
      description: `Event id to send instead of the one the transport assigns: ${SSE_ID_FORM}, so that clients can resume from it.`,
      oneOf: [{ type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH, pattern: '^[!-~]+$' }, { type: 'number' }],
    },
    filter: {
      description:
        'Only connections whose metadata matches: every key must match, a list matches any of its values. ' +
        'May also be given as a JSON string.',
      oneOf: [
        {
          type: 'object',
          additionalProperties: {
            oneOf: [
              { type: 'string' },
              { type: 'number' },
              { type: 'boolean' },
              { type: 'array', minItems: 1, items: { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } },
            ],
          },
        },
        { type: 'string', description: 'The filter object as JSON.' },
      ],
      example: { channel: 'news' },
    },
  },
  example: { message: 'Breaking news!', event_type: 'update', filter: { channel: 'news' } },
} as const;

/** JSON Schema of what `POST path/broadcast` answers. */
export const SSE_BROADCAST_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['success', 'endpoint', 'endpoint_clients', 'reached_on_this_node', 'node', 'clients', 'clients_reached'],
  properties: {
    success: { type: 'boolean', enum: [true] },
    endpoint: { type: 'string', description: 'The endpoint broadcast to (the @SseEndpoint path).' },
    endpoint_clients: { type: 'integer', description: 'Open streams of this endpoint on every node (cluster-wide), read just after the broadcast.' },
    reached_on_this_node: {
      type: 'integer',
      description: 'Streams of the answering node the event was written to; other nodes deliver on their own and do not report back.',
    },
    node: { type: 'string', description: 'The node that answered.' },
    clients: { type: 'integer', description: 'The same as endpoint_clients (the older name).' },
    clients_reached: { type: 'integer', description: 'The same as reached_on_this_node (the older name).' },
  },
} as const;

const COUNTS = { type: 'object', additionalProperties: { type: 'integer' }, description: 'Open streams by endpoint path.' } as const;

/** JSON Schema of what `GET path/stats` answers. */
export const SSE_STATS_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['connected_clients', 'timestamp', 'backend', 'endpoint', 'endpoint_clients', 'endpoints', 'nodes'],
  properties: {
    connected_clients: { type: 'integer', description: 'Open streams on every node, all endpoints.' },
    timestamp: { type: 'string', format: 'date-time' },
    backend: { type: 'string', description: 'The transport, for example `memory` or `redis`.' },
    endpoint: { type: 'string', description: 'This endpoint path.' },
    endpoint_clients: { type: 'integer', description: 'Open streams of this endpoint, cluster-wide.' },
    endpoints: COUNTS,
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['node', 'connected_clients', 'endpoints'],
        properties: { node: { type: 'string' }, connected_clients: { type: 'integer' }, endpoints: COUNTS },
      },
    },
  },
} as const;

const ERROR_SCHEMA = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, message: { type: 'string' }, error: { type: 'string' } },
} as const;

/**
 * Documents the routes `@SseEndpoint` generates when `@nestjs/swagger` is installed. It runs as
 * an async provider, that is while the app is created and before `SwaggerModule.createDocument`
 * is usually called (which comes before `listen`, so before any `onModuleInit`). Swagger is
 * loaded with a dynamic `import()`: without it, nothing happens.
 */
export const sseOpenApiProvider: Provider = {
  provide: SSE_OPENAPI,
  inject: [DiscoveryService, SseHub],
  useFactory: async (discovery: DiscoveryService, hub: SseHub<any>): Promise<boolean> => {
    const swagger = await loadSwagger();
    if (swagger === undefined) return false;
    for (const [, definition] of sseEndpoints(discovery)) {
      try {
        // the runtime's options: documented as the endpoint behaves
        documentEndpoint(swagger, hub.endpointFor(definition));
      } catch (err) {
        new Logger('SseModule').warn(`Could not document ${definition.path} for OpenAPI: ${(err as Error).message}`);
      }
    }
    return true;
  },
};

async function loadSwagger(): Promise<any> {
  try {
    // a variable specifier: @nestjs/swagger stays an optional peer, never a static import
    const specifier = '@nestjs/swagger';
    return await import(specifier);
  } catch (err) {
    const code = (err as { code?: string })?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** Applies swagger's decorators to the three handlers of one endpoint class (once per class). */
function documentEndpoint(swagger: any, runtime: SseEndpointRuntime): void {
  const { definition, options, path } = runtime;
  const target = definition.target;
  if (Reflect.getOwnMetadata(DOCUMENTED, target)) return;
  Reflect.defineMetadata(DOCUMENTED, true, target);
  const proto = target.prototype;
  const apply = (member: string, ...decorators: Array<(...args: any[]) => void>): void => {
    const descriptor = Object.getOwnPropertyDescriptor(proto, member);
    if (!descriptor) return;
    for (const decorator of decorators) decorator(proto, member, descriptor);
  };
  const {
    ApiOperation,
    ApiProduces,
    ApiConsumes,
    ApiOkResponse,
    ApiResponse,
    ApiQuery,
    ApiHeader,
    ApiBody,
    ApiExcludeEndpoint,
  } = swagger;
  // errors are JSON even on the stream route, whose success is text/event-stream
  const error = (status: number, description: string) =>
    ApiResponse({ status, description, content: { 'application/json': { schema: ERROR_SCHEMA } } });

  const keys = options.metadata?.allowedKeys;
  apply(
    SSE_STREAM_HANDLER,
    ApiOperation({
      summary: `Event stream of ${path}`,
      description:
        'A Server-Sent Events stream (open it with EventSource). Query parameters become the connection\'s metadata, ' +
        'which broadcast filters match. A client that reconnects with Last-Event-ID (or ?lastEventId=) gets what it ' +
        `missed, or an \`${SSE_RESET_EVENT}\` event when that cannot be replayed.`,
    }),
    ApiProduces('text/event-stream'),
    ApiOkResponse({
      description: 'The stream: `retry:`, then `id:`/`event:`/`data:` frames and `:` heartbeat comments, until either side closes.',
      content: { 'text/event-stream': { schema: { type: 'string', example: 'retry: 3000\n\nid: lx3k2-1\nevent: update\ndata: Breaking news!\n\n' } } },
    }),
    ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event id (EventSource sends it on reconnect).' }),
    ApiQuery({ name: LAST_EVENT_ID_QUERY, required: false, type: String, description: 'Resume after this id, for a first connection that cannot set headers.' }),
    ...(keys ?? []).map((key) => ApiQuery({ name: key, required: false, type: String, description: 'Connection metadata, matched by broadcast filters.' })),
    error(400, 'The query breaks the metadata limits.'),
    error(403, 'authorize() refused the connection.'),
    error(429, 'Too many open streams.'),
  );

  const access = options.access ?? {};
  if (access.stats === 'disabled') {
    apply(SSE_STATS_HANDLER, ApiExcludeEndpoint());
  } else {
    apply(
      SSE_STATS_HANDLER,
      ApiOperation({ summary: `Connection counts of ${path}`, description: `GET ${runtime.sub('stats')}: open streams on every node.` }),
      ApiOkResponse({ description: 'Connection counts.', schema: SSE_STATS_RESPONSE_SCHEMA }),
      error(403, 'The route is closed: no guard protects it and access.stats does not open it.'),
    );
  }

  if (access.broadcast === 'disabled') {
    apply(SSE_BROADCAST_HANDLER, ApiExcludeEndpoint());
  } else {
    const allowed = options.allowedEvents;
    apply(
      SSE_BROADCAST_HANDLER,
      ApiOperation({
        summary: `Broadcast to ${path}`,
        description:
          `POST ${runtime.sub('broadcast')}: sends one event to every matching stream of this endpoint on every node.` +
          (allowed ? ` Allowed event types: ${allowed.join(', ')}.` : ''),
      }),
      ApiConsumes('application/json'),
      ApiBody({ required: true, description: 'The event to send.', schema: SSE_BROADCAST_BODY_SCHEMA }),
      ApiOkResponse({ description: 'Accepted and delivered.', schema: SSE_BROADCAST_RESPONSE_SCHEMA }),
      error(400, 'The body is not a valid broadcast; the message names the field.'),
      error(403, 'The route is closed: no guard protects it and access.broadcast does not open it.'),
      error(413, 'The body is larger than maxBodySize.'),
      error(415, 'The body is not JSON.'),
    );
  }
}
